"""POST and GET /pick-pack/{tenant}/events: the scanners' ledger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CanManage, CanView, RuntimeDep
from api.errors import BadRequest
from api.params import SaasToken, Tenant
from api.responses import ERROR_DOCS, SUCCESS, JSONBody, freshness_headers
from api.schemas import ErrorMessage, OrderEntryEventCreate, OrderEntryEventResponse
from ledger.domain.packing import format_event_time, parse_event_time
from ledger.services import feed
from ledger.services.scans import record_packing_event

# On every page once something is archived: the instant from which the store holds scans.
RETAINED_FROM = "Pickpack-Retained-From"

router = APIRouter(tags=["Events"])

MAX_PAGE_SIZE = feed.MAX_PAGE_SIZE


@router.post(
    "/pick-pack/{tenant}/events",
    operation_id="POST-pick-pack-create-packing-event",
    summary="Creating a new packing event",
    description=(
        "Records one scanner's packing event (picked, packed and cancelled amounts of a "
        "product of an order). Idempotent by eventId per tenant: the same event again "
        "answers 200 and records nothing; other content under a known eventId answers 409. "
        "The answer follows the commit. An event for an order not registered yet is kept "
        "and counts once the order is registered. A CANCELLED order refuses new events "
        "(409)."
    ),
    responses={
        200: {
            "description": "Event creation response",
            "content": {"application/json": {"example": SUCCESS}},
        },
        **ERROR_DOCS,
        409: {"model": ErrorMessage, "description": "Conflict"},
    },
)
async def create_packing_event(
    tenant: Tenant,
    body: OrderEntryEventCreate,
    saas_token: SaasToken,
    principal: CanManage,
    rt: RuntimeDep,
) -> JSONBody:
    # The contract, and the answer to every request api/fast_ingest.py leaves to it. (A
    # comment, not a docstring: FastAPI would publish a docstring as the description.)
    await record_packing_event(rt, body.to_event(tenant), principal.subject, saas_token)
    return JSONBody(SUCCESS)


@router.get(
    "/pick-pack/{tenant}/events",
    operation_id="GET-pick-pack-retrieve-packing-event",
    summary="Retrieving all events",
    response_model=list[OrderEntryEventResponse],
    responses=ERROR_DOCS,
)
def list_packing_events(
    tenant: Tenant,
    principal: CanView,
    rt: RuntimeDep,
    timestamp: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only events whose own timestamp is strictly after this one "
            "(any ISO 8601 date-time with `Z` or an offset).",
        ),
    ] = None,
    pageNumber: Annotated[int, Query(ge=0, description="Number of the page, from 1.")] = 1,
    pageSize: Annotated[
        int, Query(ge=0, le=MAX_PAGE_SIZE, description="Size of the page (at most 20000).")
    ] = MAX_PAGE_SIZE,
) -> JSONBody:
    after = None
    if timestamp is not None:
        try:
            # An offset's "+" arrives as a space when a client forgets to URL-encode it.
            after = parse_event_time(_plus_restored(timestamp))
        except ValueError as exc:
            raise BadRequest(f"timestamp: not an ISO 8601 date-time ({exc})") from None
    # Archived scans are not in the store (docs/explanation/semantics.md, "Retention"): a
    # page that would include some is refused rather than answered incomplete, and every
    # page says from when the store holds the scans.
    cutoff, _ = rt.retention.current()
    if cutoff is not None and after is not None and after < cutoff:
        raise BadRequest(
            f"timestamp: events before {format_event_time(cutoff)} are archived; ask from "
            "that instant on, or import the archive into a staging store"
        )
    items, freshness = feed.read_page(
        rt.lagging_reads, rt.lagging_views.order_entries, tenant, after, pageNumber, pageSize
    )
    headers = freshness_headers(freshness)
    if cutoff is not None:
        headers = {**(headers or {}), RETAINED_FROM: format_event_time(cutoff)}
    return JSONBody(items, headers=headers)


def _plus_restored(timestamp: str) -> str:
    """`2024-01-01T12:00:00 02:00` (an unencoded "+") back to `...+02:00`."""
    date, sep, time_part = timestamp.partition("T")
    return date + sep + time_part.replace(" ", "+") if sep else timestamp
