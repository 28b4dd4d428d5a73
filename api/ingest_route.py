"""POST /events, the scanners' hot path: a valid request skips FastAPI's per-request work.

The route is declared as an ordinary FastAPI endpoint (api/routes_events.py): its
signature is the contract, the OpenAPI document is generated from it, and it answers
every request the fast path does not take. The fast path takes only the common case, a
request that passes every check: a JSON content type, a body that validates against
OrderEntryEventCreate straight from the bytes (pydantic's JSON parser, no dict in
between), a valid saas-token header, and a token already verified (no key fetch). Then
the event goes to the same `record_packing_event` the declared endpoint calls.

Anything else (a bad body, a missing header, an unusual content type) is handed to the
declared endpoint, which answers it exactly as it always has: error bodies, their
wording and their precedence have one source. Authentication errors are raised here as
the declared endpoint would raise them for the same request (its body having parsed).
Why: FastAPI's dependency solving, parameter validation and response building were
about a third of the ingest path's CPU (docs/BENCHMARKS.md);
tests/test_ingest_fast_path.py checks that both paths answer alike.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from api.auth import MANAGE, Principal, authorize, check_tenant_path
from api.errors import Conflict
from api.params import SaasToken
from api.responses import SUCCESS
from api.runtime import Runtime
from api.schemas import OrderEntryEventCreate
from ledger.packing import PackingEvent, Verdict
from ledger.store import Attribution

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_SAAS_TOKEN: TypeAdapter[str] = TypeAdapter(SaasToken)
_SUCCESS = orjson.dumps(SUCCESS)


async def record_packing_event(
    rt: Runtime, event: PackingEvent, principal: Principal, saas_token: str
) -> Response:
    """Append the event (group commit) and answer once its transaction has committed."""
    outcome = await rt.committer.append(event, Attribution(principal.subject, saas_token))
    if outcome.verdict is Verdict.CONFLICT:
        raise Conflict(f"eventId: event '{event.event_id}' was already recorded with other content")
    if outcome.verdict is Verdict.ORDER_CLOSED:
        raise Conflict(f"orderNumber: order '{event.order_id}' is CANCELLED and accepts no events")
    return Response(_SUCCESS, media_type="application/json")


def _json_content_type(value: str | None) -> bool:
    """`application/json`, any case, with or without parameters (as FastAPI reads it)."""
    return value is not None and value.split(";", 1)[0].strip().lower() == "application/json"


class IngestRoute(APIRoute):
    """An APIRoute whose handler tries the fast path before the declared endpoint.

    An app whose `state.fast_ingest` is false (tests compare the two) only ever runs
    the declared endpoint.
    """

    def get_route_handler(self) -> Handler:
        declared = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if not request.app.state.fast_ingest:
                return await declared(request)
            headers = request.headers
            body = await request.body()  # cached on the request: `declared` reads it again
            if not body or not _json_content_type(headers.get("content-type")):
                return await declared(request)
            try:
                event = OrderEntryEventCreate.model_validate_json(body)
            except ValidationError:
                return await declared(request)
            rt = request.app.state.runtime
            verifier = rt.verifier
            authorization = headers.get("authorization")
            if verifier.may_block(authorization):
                return await declared(request)  # it fetches keys off the event loop
            tenant = request.path_params["tenant"]
            principal = verifier.verify(authorization)  # 401, as the declared gate
            check_tenant_path(tenant)  # 400
            authorize(principal, tenant, MANAGE)  # 403
            saas_token = headers.get("saas-token")
            if saas_token is None:
                return await declared(request)
            try:
                _SAAS_TOKEN.validate_python(saas_token)
            except ValidationError:
                return await declared(request)
            return await record_packing_event(rt, event.to_event(tenant), principal, saas_token)

        return handler
