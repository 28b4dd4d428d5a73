"""The order's story (extensions): the change feed, an order's history, corrections.

The feed's long-poll and stream hold no thread and no connection while they wait: they
wait on the runtime's CommitBell (ledger/services/changes.py) and read each page in the
thread pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from api.auth import Principal
from api.deps import CanManage, CanView, RuntimeDep
from api.errors import BadRequest, Gone, NotFound
from api.params import OrderId, SaasToken, Tenant
from api.responses import ERROR_DOCS, SUCCESS, SUCCESS_DOC, JSONBody
from api.schemas import ErrorMessage
from api.story_schemas import ChangesPage, CorrectionCreate, HistoryPage
from ledger.domain.packing import format_event_time
from ledger.domain.retention import archived_after
from ledger.services import changes, story
from ledger.services.tokens import RevocationList

router = APIRouter(tags=["Order story"])

MAX_POSITION = 2**62
Position = Annotated[
    int, Query(ge=0, le=MAX_POSITION, description="Only facts after this position.")
]
Limit = Annotated[
    int, Query(ge=1, le=changes.MAX_LIMIT, description="At most this many items (1 to 1000).")
]

_SSE_DOC = {
    "text/event-stream": {
        "schema": {"type": "string"},
        "example": 'id: 42\ndata: {"position":42,"recordedAt":"...","orderId":"123",'
        '"type":"PackingEventRecorded","data":{...}}\n\n',
    }
}


@router.get(
    "/pick-pack/{tenant}/changes",
    operation_id="GET-pick-pack-changes",
    summary="Following every fact of the tenant (extension)",
    description="Every fact of the tenant in commit order, by position: follow `next` and "
    "you see each fact exactly once, whatever timestamps scanners send. With `wait`, an "
    "empty answer is held until a fact commits or the time runs out. With `Accept: "
    "text/event-stream`, the same items stream as server-sent events (`id:` = position; "
    "resumes after `Last-Event-ID`).",
    response_model=ChangesPage,
    responses={
        200: {"content": _SSE_DOC},
        **ERROR_DOCS,
        410: {
            "model": ErrorMessage,
            "description": "Facts after `after` are archived: ask again from the position "
            "the message names (docs/how-to/retention.md)",
        },
    },
)
async def list_changes(
    request: Request,
    tenant: Tenant,
    principal: CanView,
    rt: RuntimeDep,
    after: Position = 0,
    limit: Limit = 100,
    wait: Annotated[
        float,
        Query(ge=0, le=changes.MAX_WAIT_SECONDS, description="Seconds to hold an empty answer."),
    ] = 0,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Streams resume after this position."),
    ] = None,
) -> Any:
    async def read_page(position: int) -> dict[str, Any]:
        # Before every read, not only the first: an archive may take the partition after
        # `position` while a stream or a long-poll is behind. A stream then breaks off (its
        # client reconnects with Last-Event-ID and gets the 410) rather than skip the gap.
        _unless_archived(rt, position)
        return await run_in_threadpool(
            changes.read, rt.store.connection, tenant, position, limit, rt.catch_up
        )

    if accept is not None and "text/event-stream" in accept:
        if last_event_id:
            try:
                after = int(last_event_id)
            except ValueError:
                raise BadRequest("Last-Event-ID: not a position") from None
            if not 0 <= after <= MAX_POSITION:
                raise BadRequest("Last-Event-ID: not a position")
        _unless_archived(rt, after)
        ended, check_in = _session_checks(principal, rt.revocations)
        return StreamingResponse(
            changes.stream(
                rt.bell, read_page, after, page_size=limit, ended=ended, check_in=check_in
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    _unless_archived(rt, after)
    poll = changes.poll(rt.bell, read_page, after, wait)
    if wait > 0:
        return JSONBody(await _unless_disconnected(request, poll))
    return JSONBody(await poll)


def _unless_archived(rt: Any, after: int) -> None:
    """A feed page after a position whose next facts are archived would skip them: 410,
    naming where the retained facts start (docs/explanation/retention.md)."""
    retained = rt.retention.current()
    first = retained[1]
    if (cutoff := archived_after(retained, after)) is not None:
        raise Gone(
            f"after: facts up to position {first - 1} are archived (cut-off "
            f"{format_event_time(cutoff)}); ask again with after={first - 1} to accept the "
            "gap, or import the archives into a staging store"
        )


def _session_checks(
    principal: Principal, revocations: RevocationList | None
) -> tuple[Callable[[], Awaitable[str | None]], Callable[[], float]]:
    """What ends a stream that its token no longer allows, and when to look again.

    A plain request is refused once its token expired, or once its OAuth client was
    revoked (within the revocation list's lifetime); a stream, checked only when it
    began, would go on for ever. So the stream asks again at the token's expiry and
    whenever the revocation list goes stale (reloading it, off the event loop), and
    ends with a last event saying why (docs/reference/api.md, "GET /changes").
    """
    client_id = principal.client_id
    revocable = revocations if client_id is not None else None

    async def ended() -> str | None:
        if principal.expires_at <= time.time():
            return "token expired"
        if revocable is not None and client_id is not None:
            if revocable.stale():
                revoked = await run_in_threadpool(revocable.is_revoked, client_id)
            else:
                revoked = revocable.is_revoked(client_id)
            if revoked:
                return "client revoked"
        return None

    def check_in() -> float:
        seconds = principal.expires_at - time.time()
        if revocable is not None:
            seconds = min(seconds, revocable.fresh_for())
        return max(seconds, 0.0) + 0.01  # just past the moment, not a busy loop before it

    return ended, check_in


async def _unless_disconnected(request: Request, work: Awaitable[Any]) -> Any:
    """`work`, abandoned if the client goes away first.

    A closed board or a scanner that timed out would otherwise keep its long-poll waiting
    for up to MAX_WAIT_SECONDS, and a server asked to stop waits for every such request
    before it exits. (A stream needs no such care: Starlette stops it on disconnect.)
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (task, gone):
            future.cancel()  # a no-op for the one that finished
        # Let both settle: `cancel()` only asks, and a task asked but not yet run has
        # no result to read (that was an InvalidStateError, answered as a 500).
        await asyncio.gather(task, gone, return_exceptions=True)
    if task.cancelled():
        return {"items": [], "next": None}  # nobody is there to read it
    return task.result()


async def _disconnect(request: Request) -> None:
    # A GET's one body message was read (or is empty); the next message is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.get(
    "/pick-pack/{tenant}/orders/{orderId}/history",
    operation_id="GET-pick-pack-order-history",
    summary="Reading an order's history (extension)",
    description="Every fact of the order in commit order, and its Order Service deliveries.",
    response_model=HistoryPage,
    responses={**ERROR_DOCS, 404: {"model": ErrorMessage, "description": "No fact of it."}},
)
def order_history(
    tenant: Tenant,
    orderId: OrderId,
    principal: CanView,
    rt: RuntimeDep,
    after: Position = 0,
    limit: Limit = 100,
) -> JSONBody:
    page = story.history(rt.lagging_reads, tenant, orderId, after, limit)
    if page is None:
        raise NotFound(f"orderId: the tenant has no fact of order '{orderId}'")
    return JSONBody(page)


@router.post(
    "/pick-pack/{tenant}/orders/{orderId}/corrections",
    operation_id="POST-pick-pack-correct-order-line",
    summary="Correcting an order line (extension)",
    description="Signed deltas of one unit with a reason, idempotent by correctionId. "
    "Changes counts, status and the next calculations; shown in the history and the "
    "change feed, never in GET /events.",
    responses={
        **SUCCESS_DOC,
        **ERROR_DOCS,
        409: {
            "model": ErrorMessage,
            "description": "A total would fall below zero, the correctionId was used with "
            "other content, or the order is CANCELLED.",
        },
    },
)
def correct_order_line(
    tenant: Tenant,
    orderId: OrderId,
    body: CorrectionCreate,
    saas_token: SaasToken,
    principal: CanManage,
    rt: RuntimeDep,
) -> JSONBody:
    story.correct(
        rt.store,
        tenant,
        orderId,
        body.to_correction(),
        principal.subject,
        # never the token itself (semantics.md, "Secrets are not history")
        rt.fingerprints(saas_token),
    )
    return JSONBody(SUCCESS)
