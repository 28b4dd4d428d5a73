"""The spec's error bodies, and the exceptions that produce them.

400/404/409/500/503 use the `errorMessage` schema ({code, message, detailInfo}); 401 uses
the Apigee-style `fault` body and 403 the scope-validation body, exactly as the
Emporix spec's examples show them, so existing clients parse our errors unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.responses import JSONBody
from ledger.adapters.pool import UNAVAILABLE_ERRORS
from ledger.domain import errors as domain

log = logging.getLogger(__name__)

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    503: "Service Unavailable",
}
INTERNAL_MESSAGE = (
    "A server-side exception occurred that prevented the system from correctly "
    "returning the result."
)

UNAVAILABLE_DETAIL = "The database is unavailable; retry the request later."
# What FastAPI says when a body cannot be decoded at all (not a JSON syntax error).
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


class ApiError(Exception):
    """An error answered with the errorMessage body."""

    def __init__(self, code: int, detail: str, message: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.message = message or _TITLES.get(code, "Error")


class Gone(ApiError):
    """410: what was asked for is archived (docs/explanation/retention.md)."""

    def __init__(self, detail: str) -> None:
        super().__init__(410, detail)


class BadRequest(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


class NotFound(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


class Conflict(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(409, detail)


class Unauthorized(Exception):
    """401 with the `fault` body."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


class Forbidden(Exception):
    """403 with the scope-validation body."""

    def __init__(self, message: str, details: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def for_domain_error(exc: domain.DomainError) -> ApiError:
    """The one mapping of the domain's refusals to the spec's status codes."""
    if isinstance(exc, domain.OrderClosed | domain.OrderArchived):
        return Conflict(f"orderId: {exc}")
    if isinstance(exc, domain.CorrectionRefused | domain.ScanRefused):
        return Conflict(str(exc))
    if isinstance(exc, domain.UnknownOrder):
        return NotFound(f"orderId: {exc}")
    return BadRequest(str(exc))  # an invalid document, a taken or unknown assignee ...


def error_body(code: int, message: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        body["detailInfo"] = detail
    return body


def fault_body(expired: bool) -> dict[str, Any]:
    if expired:
        return {
            "fault": {
                "faultstring": "Access Token expired",
                "detail": {"errorcode": "keymanagement.service.access_token_expired"},
            }
        }
    return {
        "fault": {
            "faultstring": "Invalid access token",
            "detail": {"errorcode": "oauth.v2.InvalidAccessToken"},
        }
    }


def describe_validation_error(err: dict[str, Any]) -> str:
    """`field: what is wrong`, the field named the way the client spelled it."""
    field = ""
    for part in err.get("loc", ()):
        if part in ("body", "query", "path", "header"):
            continue
        # list positions as `[0]`, so an array body names `[0].packedCount`
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    field = field or "body"
    kind = err.get("type", "")
    if kind == "json_invalid":
        return "body: the request body is not valid JSON"
    if kind == "missing":
        return f"{field}: required field is missing"
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{field}: {msg}"


def unavailable_response(exc: Exception) -> JSONBody:
    """503 in the errorMessage shape, with Retry-After: the client retries the request."""
    first_line = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
    log.warning("database unavailable: %s", first_line)
    return JSONBody(
        error_body(503, "Service Unavailable", UNAVAILABLE_DETAIL),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def internal_response(exc: Exception) -> JSONBody:
    log.exception("unhandled error", exc_info=exc)
    return JSONBody(error_body(500, INTERNAL_MESSAGE), status_code=500)


def api_error_response(exc: ApiError) -> JSONBody:
    return JSONBody(error_body(exc.code, exc.message, exc.detail), status_code=exc.code)


def response_for(exc: Exception) -> JSONBody:
    """The answer the app's handlers give for an error raised while appending an event."""
    if isinstance(exc, ApiError):
        return api_error_response(exc)
    if isinstance(exc, domain.DomainError):
        return api_error_response(for_domain_error(exc))
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return unavailable_response(exc)
    return internal_response(exc)


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into the spec's bodies."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONBody:
        return api_error_response(exc)

    @app.exception_handler(domain.DomainError)
    async def _refused(_: Request, exc: domain.DomainError) -> JSONBody:
        return api_error_response(for_domain_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONBody:
        details = "; ".join(describe_validation_error(e) for e in exc.errors())
        return JSONBody(error_body(400, "Bad Request", details), status_code=400)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, exc: Unauthorized) -> JSONBody:
        return JSONBody(fault_body(exc.expired), status_code=401)

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONBody:
        body = {"code": 403, "status": "Forbidden", "message": exc.message, "details": exc.details}
        return JSONBody(body, status_code=403)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONBody:
        code = exc.status_code
        detail = str(exc.detail)
        if detail == _FASTAPI_BODY_ERROR:  # e.g. a body that is not UTF-8: name the field
            detail = "body: the request body could not be read as JSON text"
        return JSONBody(error_body(code, _TITLES.get(code, "Error"), detail), status_code=code)

    async def _unavailable(_: Request, exc: Exception) -> JSONBody:
        return unavailable_response(exc)

    # The database is down, restarting or failing over, or no connection came free in
    # time: a retryable 503 in the spec's errorMessage shape, not a 500.
    for family in UNAVAILABLE_ERRORS:
        app.add_exception_handler(family, _unavailable)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONBody:
        return internal_response(exc)
