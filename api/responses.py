"""JSON responses rendered with orjson (FastAPI deprecated its JSONBody)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api.schemas import ErrorMessage

SUCCESS: dict[str, Any] = {"message": "Success", "code": 200}
"""The spec's successResponse body, answered by every write that has nothing else to say."""

SUCCESS_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "Success", "content": {"application/json": {"example": SUCCESS}}}
}
ERROR_DOCS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "Request was syntactically incorrect."},
    401: {"description": "Unauthorized: the token is invalid or has expired."},
    403: {"description": "Scopes are not sufficient, or the token is for another tenant."},
    500: {"model": ErrorMessage, "description": "Internal Service Error occurred."},
}
"""OpenAPI documentation of the errors every operation can answer."""


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
