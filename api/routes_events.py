"""POST and GET /pick-pack/{tenant}/events: the scanners' ledger."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CanManage, CanView, RuntimeDep
from api.errors import BadRequest
from api.fast_ingest import record_packing_event
from api.params import SaasToken, Tenant
from api.responses import ERROR_DOCS, SUCCESS, JSONBody, freshness_headers
from api.schemas import ErrorMessage, OrderEntryEventCreate, OrderEntryEventResponse
from ledger.adapters import feed_store
from ledger.domain.packing import parse_event_time
from ledger.domain.units import is_piece_unit, measure_unit, packed_in_pieces, same_dimension

router = APIRouter(tags=["Events"])

MAX_PAGE_SIZE = 20_000
MAX_OFFSET = 2**62


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
    await record_packing_event(rt, body.to_event(tenant), principal, saas_token)
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
    size = pageSize or MAX_PAGE_SIZE
    page = max(pageNumber, 1)
    if (page - 1) * size > MAX_OFFSET:
        # Past any feed there can be; SQL's OFFSET is a bigint (a 500, found by fuzzing).
        return JSONBody([])
    with rt.store.datastore.get_connection() as conn:
        states = feed_store.events_after(conn, tenant, after, (page - 1) * size, size)
    # Only events in non-piece units need their order entry's measure (decision 6).
    entries, freshness = rt.orders_lookup(
        tenant,
        {(s["order_id"], s["product_id"]) for s in states if not is_piece_unit(s["unit"])},
    )
    return JSONBody([feed_item(s, entries) for s in states], headers=freshness_headers(freshness))


def _plus_restored(timestamp: str) -> str:
    """`2024-01-01T12:00:00 02:00` (an unencoded "+") back to `...+02:00`."""
    date, sep, time_part = timestamp.partition("T")
    return date + sep + time_part.replace(" ", "+") if sep else timestamp


def feed_item(
    state: dict[str, Any], entries: dict[tuple[str, str], list[dict[str, Any]]]
) -> dict[str, Any]:
    """A stored PackingEventRecorded as the spec's OrderEntryEventResponse.

    A field with no value (no deliveryCycle sent, packedAmountInPc unknown) is left out
    rather than null: the spec's schema types them string/integer/boolean without
    `nullable`, and the order documents already leave unknown figures out. Built field
    by field (no second pass to drop the nulls): a feed page renders 20,000 of these.
    """
    unit = state["unit"]
    packed = state["packed"]
    item = {
        "eventId": state["event_id"],
        "productId": state["product_id"],
        "orderNumber": state["order_id"],
        "timestamp": state["event_time"],
        "pickedAmount": state["picked"],
        "packedAmount": packed,
        "canceledAmount": state["canceled"],
    }
    if is_piece_unit(unit):
        item["packedAmountInPc"] = packed
    else:
        # The first of the product's entries whose measure converts from the scan's unit.
        entry = next(
            (
                e
                for e in entries.get((state["order_id"], state["product_id"]), ())
                if same_dimension(measure_unit(e), unit)
            ),
            None,
        )
        pieces = packed_in_pieces(packed, unit, entry)
        if pieces is not None:
            item["packedAmountInPc"] = pieces
    for key, field in _OPTIONAL_FIELDS:
        value = state[field]
        if value is not None:
            item[key] = value
    return item


_OPTIONAL_FIELDS = (
    ("deliveryCycle", "delivery_cycle"),
    ("supplierId", "supplier_id"),
    ("user", "user"),
    ("site", "site"),
    ("unit", "unit"),
    ("bookProduct", "book_product"),
)
