"""The order's story: its history, the order as it stood at an instant, corrections.

The as-of read folds the order's facts with the domain's own fold (the order state of
ledger.domain.status, lines included, which the order_status view applies too), so
there is no other implementation of the rules to drift from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.adapters import archive_store, story_store
from ledger.adapters.event_store import EventStore
from ledger.adapters.order_context import OrderContext
from ledger.adapters.replica import Connect
from ledger.domain import corrections
from ledger.domain.errors import OrderArchived
from ledger.domain.events import LedgerEvent, OrderFinished, restored
from ledger.domain.order_document import present_order
from ledger.domain.packing import format_event_time
from ledger.domain.status import OrderState, apply
from ledger.domain.story import history_item


def history(
    reads: Connect, tenant: str, order_id: str, after: int, limit: int
) -> dict[str, Any] | None:
    """A page of the order's facts after `after`; None if the tenant has no fact of it.
    Read on `reads`, connections for the reads that may lag the primary.

    An OrderFinished item carries its calculations request's delivery (status,
    attempts, last HTTP status, times); requests queued by recalculation jobs, which
    record no fact, are listed on the last page.
    """
    with reads() as conn:
        facts = story_store.history(conn, tenant, order_id, after, limit + 1)
        archived = archive_store.order_archived(conn, tenant, order_id)
        if not facts and not archived and not story_store.history(conn, tenant, order_id, 0, 1):
            return None
        sent = {d["id"]: d for d in story_store.deliveries(conn, tenant, order_id)}
    more = len(facts) > limit
    facts = facts[:limit]
    items = []
    for position, cls, state in facts:
        item = history_item(position, cls, state)
        if cls is OrderFinished:
            delivery = sent.pop(state["recalculation_id"], None)
            item["data"]["delivery"] = _delivery(delivery) if delivery else None
        items.append(item)
    if not more:
        for d in sent.values():
            if d["job_id"] is not None:
                items.append(
                    {
                        "position": None,
                        "recordedAt": _iso(d["created_at"]),
                        "type": "RecalculationDelivery",
                        "user": None,
                        "data": {"jobId": d["job_id"], "delivery": _delivery(d)},
                    }
                )
    page = {
        "orderId": order_id,
        "items": items,
        "next": facts[-1][0] if more else None,
    }
    if archived is not None:  # the facts before it are in an archive, not here
        page["archivedBefore"] = format_event_time(archived)
    return page


def _delivery(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "recalculationId": d["id"],
        "status": d["status"],
        "attempts": d["attempts"],
        "statusCode": d["last_status_code"],
        "message": d["last_message"],
        "queuedAt": _iso(d["created_at"]),
        "updatedAt": _iso(d["updated_at"]),
    }


def _iso(at: datetime) -> str:
    return format_event_time(at)


def order_as_of(
    store: EventStore, tenant: str, order_id: str, at: datetime
) -> dict[str, Any] | None:
    """GET order's body as it stood at `at`; None if it was not registered by then.
    OrderArchived when some of its facts are archived: the state at any instant needs
    every fact up to it, and the cut-off alone does not tell which ones were before `at`."""
    with store.connection() as conn:
        archived = archive_store.order_archived(conn, tenant, order_id)
        if archived is not None:
            raise OrderArchived(
                f"facts of order '{order_id}' recorded before {format_event_time(archived)} "
                "are archived; its state at an instant needs every fact up to it"
            )
        facts = story_store.order_facts_until(conn, tenant, order_id, at)
    state = OrderState(tenant=tenant, order_id=order_id)
    for _, cls, data in facts:
        apply(state, restored(cls, data))
    if not state.registered:
        return None
    row = {
        "order_id": order_id,
        "document": state.document,
        "packing_status": state.status,
        "packaging": state.packaging,
        "holding_area_number": state.holding_area_number,
        "assignees": state.assignees,
    }
    return present_order(row, state.lines)


def correct(
    store: EventStore,
    tenant: str,
    order_id: str,
    correction: corrections.Correction,
    user: str | None,
    saas_token: str | None,
) -> bool:
    """Record the correction (True), or find it already recorded (False: a replay)."""

    def decide(ctx: OrderContext) -> list[LedgerEvent]:
        return corrections.correct(
            ctx.state,
            correction,
            ctx.correction(correction.correction_id),
            ctx.line_sums(correction.product_id),
            user,
            saas_token,
        )

    return bool(store.run_order_command(tenant, order_id, decide))
