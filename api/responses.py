"""JSON responses rendered with orjson (FastAPI deprecated its JSONBody)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api.schemas import ErrorMessage
from projections.read import Freshness

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


STALE_HEADER = "X-Pickpack-Stale"


def freshness_headers(freshness: Freshness | None) -> dict[str, str] | None:
    """`X-Pickpack-Stale: <seconds behind>` on a read whose views did not reach the
    tenant's latest write in time (docs/reference/api.md); nothing on a fresh one."""
    if freshness is None or freshness.behind is None:
        return None
    return {STALE_HEADER: f"{freshness.behind:.3f}"}
