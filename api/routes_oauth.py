"""POST /oauth/token (Emporix's OAuth Service, client credentials) and the public keys.

At the service root, as Emporix serves it beside its APIs, so a scanner configured for
Emporix changes only its base URL. The body is form-encoded (RFC 6749, Emporix's
tutorial) or JSON (Emporix's OpenAPI document); the client may also authenticate with
HTTP Basic (RFC 6749 2.3.1). Answers: the contract's token body, or RFC 6749 5.2's
error body (`error`, `error_description`): 400 invalid_request, unsupported_grant_type,
invalid_scope, unauthorized_client; 401 invalid_client; 429 invalid_client with
Retry-After while failed attempts are throttled (ledger/services/tokens.py).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.responses import JSONBody
from ledger.services.tokens import OAuthError

router = APIRouter(tags=["OAuth"])

_FIELDS = ("grant_type", "client_id", "client_secret", "scope")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class AccessToken(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    session_idle_time: int
    refresh_token: str
    refresh_token_expires_in: int
    scope: str


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, Any]]


# Emporix's AccessTokenRequest; the body is parsed by hand (two content types, and the
# OAuth error body instead of the service's errorMessage for a bad one).
_REQUEST_SCHEMA = {
    "title": "AccessTokenRequest",
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "example": "client_credentials"},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "scope": {
            "type": "string",
            "example": "tenant=acme pickpack.pickpack_view pickpack.pickpack_manage",
        },
    },
}
_ERROR = {"model": OAuthErrorBody}


def _parse(content_type: str, body: bytes) -> dict[str, str]:
    """The four parameters from a form or JSON body; OAuthError(invalid_request) otherwise."""
    kind = content_type.split(";", 1)[0].strip().lower()
    params: dict[str, str] = {}
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError):
            raise OAuthError("invalid_request", "body: not a UTF-8 form") from None
        for name, value in pairs:
            if name in _FIELDS and name in params:
                raise OAuthError("invalid_request", f"{name}: given more than once")
            params[name] = value
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise OAuthError("invalid_request", "body: not valid JSON") from None
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "body: must be a JSON object")
        for name in _FIELDS:
            field = data.get(name)
            if field is None:
                continue
            if not isinstance(field, str):
                raise OAuthError("invalid_request", f"{name}: must be a string")
            params[name] = field
    else:
        raise OAuthError(
            "invalid_request",
            "Content-Type: must be application/x-www-form-urlencoded or application/json",
        )
    return {k: v for k, v in params.items() if k in _FIELDS and v != ""}


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """Client credentials from an HTTP Basic header (RFC 6749 2.3.1), if one is sent."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client", "Authorization: not valid Basic credentials", 401
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "Authorization: not valid Basic credentials", 401)
    return unquote(client_id), unquote(secret)


def _error(exc: OAuthError, basic: bool) -> JSONBody:
    headers = dict(_NO_STORE)
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = 'Basic realm="pickpack"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return JSONBody(exc.body(), status_code=exc.status, headers=headers)


@router.post(
    "/oauth/token",
    operation_id="POST-oauth-request-client-credentials",
    summary="Requesting a service access token",
    description="Client credentials grant (Emporix's OAuth Service). The body is form-encoded "
    "or JSON; `scope` names the tenant (`tenant=acme`) and the wanted scopes. No refresh "
    "tokens.",
    response_model=AccessToken,
    responses={400: _ERROR, 401: _ERROR, 429: _ERROR},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _REQUEST_SCHEMA},
                "application/json": {"schema": _REQUEST_SCHEMA},
            },
        }
    },
)
async def token(request: Request) -> JSONBody:
    basic = False
    try:
        params = _parse(request.headers.get("content-type", ""), await request.body())
        credentials = _basic(request.headers.get("authorization"))
        if credentials is not None:
            basic = True
            if "client_id" in params or "client_secret" in params:
                raise OAuthError(
                    "invalid_request", "send the client's credentials one way, not two"
                )
            params["client_id"], params["client_secret"] = credentials
        service = request.app.state.runtime.token_service
        # The secret check is a deliberately slow hash, and the client lookup a query.
        answer = await run_in_threadpool(
            service.issue,
            params.get("grant_type"),
            params.get("client_id"),
            params.get("client_secret"),
            params.get("scope"),
            request.client.host if request.client else None,
        )
    except OAuthError as exc:
        return _error(exc, basic)
    return JSONBody(answer, headers=_NO_STORE)


@router.get(
    "/.well-known/jwks.json",
    summary="The public keys of the service's own tokens (RS256)",
    description="Empty when the service signs with a shared HS256 secret, which is never "
    "published.",
    response_model=JsonWebKeySet,
)
async def jwks(request: Request) -> JSONBody:
    service = request.app.state.runtime.token_service
    signer = service.signer if service is not None else None
    keys = signer.jwks() if signer is not None else {"keys": []}
    return JSONBody(keys, headers={"Cache-Control": "public, max-age=300"})
