"""POST /events, the scanners' hot path: a valid scan skips the framework's layers.

The route is declared as an ordinary FastAPI endpoint (api/routes_events.py): its
signature is the contract, the OpenAPI document is generated from it, and it answers
every request this layer does not take. This pure ASGI layer sits just inside the
request observer (so metrics, the request log and X-Request-Id are unchanged) and
takes only the common case: a request that passes every check. That is a JSON content
type, a declared length within the body limit, a body that validates against
OrderEntryEventCreate straight from its bytes (pydantic's JSON parser, no dict in
between), a token already verified (no key fetch), the tenant and scope the token
grants, and a valid saas-token header. Such a scan goes to the same use case the
declared endpoint calls (ledger/services/scans.py `record_packing_event`).

Every other request is handed, with its body replayed, to the full application, which
answers it exactly as it always has: error bodies, their wording and their precedence
have one source. The only answers built here are the 200 and, for an append that
failed (a 409 conflict, a 503 while the database is away), the same body the app's
exception handlers build (api/errors.py).

Why: on this route FastAPI's middleware, routing, dependency solving and response
building cost more CPU than the durable append itself (measured with bench/cpu.py).
tests/api/test_ingest_fast_path.py checks that both ways answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter
from starlette.responses import Response

from api.auth import MANAGE, Principal, authorize, check_tenant_path
from api.body_limit import MAX_BODY_BYTES
from api.errors import response_for
from api.metrics import INGEST_ROUTE
from api.observability import ASGIApp, Message, Receive, Scope, Send
from api.params import SaasToken
from api.responses import SUCCESS
from api.schemas import OrderEntryEventCreate
from bootstrap.runtime import Runtime
from ledger.domain.packing import PackingEvent
from ledger.services.scans import record_packing_event

_PREFIX = "/pick-pack/"
_SUFFIX = "/events"
_SAAS_TOKEN: TypeAdapter[str] = TypeAdapter(SaasToken)
_SUCCESS = orjson.dumps(SUCCESS)
_SUCCESS_LENGTH = str(len(_SUCCESS)).encode()


@dataclass(frozen=True)
class _RouteLabel:
    """What the request observer reads from scope["route"]: the route's template."""

    path: str


_ROUTE = _RouteLabel(INGEST_ROUTE)


def _json_content_type(value: bytes) -> bool:
    """`application/json`, any case, with or without parameters (as FastAPI reads it)."""
    return value.split(b";", 1)[0].strip().lower() == b"application/json"


class FastIngest:
    """Answers valid scans itself; passes everything else to `app` unchanged.

    `state` is the application's state: its `runtime`, and `fast_ingest` (false: never
    take the fast path; the tests compare both ways).
    """

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(_PREFIX)
            or not path.endswith(_SUFFIX)
            or scope.get("root_path")
            or not self.state.fast_ingest
        ):
            await self.app(scope, receive, send)
            return
        tenant = path[len(_PREFIX) : -len(_SUFFIX)]
        authorization = saas_token = content_type = length = None
        for name, value in scope["headers"]:  # the first of each, as Starlette reads them
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"saas-token" and saas_token is None:
                saas_token = value
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and length is None:
                length = value
        if (
            not tenant
            or "/" in tenant
            or authorization is None
            or saas_token is None
            or content_type is None
            or not _json_content_type(content_type)
            or length is None
            or not length.isdigit()
            or int(length) > MAX_BODY_BYTES
        ):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break  # the whole body, or the client went away (the app will see it)
        body = b"".join(m.get("body", b"") for m in received if m["type"] == "http.request")
        accepted = self._accept(tenant, authorization, saas_token, body, received)
        if accepted is None:
            await self.app(scope, _replay(received, receive), send)
            return
        rt, event, principal, saas = accepted
        scope["route"] = _ROUTE  # as routing would set it: the observer labels by template
        scope["path_params"] = {"tenant": tenant}
        try:
            await record_packing_event(rt, event, principal.subject, saas)
        except Exception as exc:
            response: Response = response_for(exc)
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", _SUCCESS_LENGTH),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _SUCCESS})

    def _accept(
        self,
        tenant: str,
        authorization: bytes,
        saas_token: bytes,
        body: bytes,
        received: list[Message],
    ) -> tuple[Runtime, PackingEvent, Principal, str] | None:
        """The event, if the request passes every check the declared endpoint makes.

        None sends the request on to the app, which answers it in full. Nothing has
        been done yet, so handing over is always safe, whatever went wrong here.
        """
        if not body or received[-1]["type"] != "http.request":
            return None
        try:
            rt: Runtime = self.state.runtime
            header = authorization.decode("latin-1")
            verifier = self.state.verifier
            if verifier.may_block(header):
                return None  # the app fetches keys off the event loop
            model = OrderEntryEventCreate.model_validate_json(body)
            saas = _SAAS_TOKEN.validate_python(saas_token.decode("latin-1"))
            principal = verifier.verify(header)
            check_tenant_path(tenant)
            authorize(principal, tenant, MANAGE)
            return rt, model.to_event(tenant), principal, saas
        except Exception:  # a 400, 401 or 403 (or a bug): the app's to answer
            return None


def _replay(received: list[Message], receive: Receive) -> Receive:
    """A receive that first gives back the messages already read."""
    pending = list(received)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
