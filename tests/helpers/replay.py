"""The expected order views of a replay: the recorded facts folded with the domain's rules."""

from __future__ import annotations

from typing import Any

from ledger.domain.events import LedgerEvent, OrderRegistered, PackingEventRecorded, restored
from ledger.domain.packing import PackingEvent
from ledger.domain.status import OrderState, apply

ENTRIES = [{"entryId": f"x{i}", "productId": f"p{i}", "totalCount": 3} for i in range(3)]


def expected_orders(
    tenant: str, registered: list[str], events: list[PackingEvent]
) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Fold the recorded facts in recording order with the domain's own rules."""
    states: dict[str, OrderState] = {}
    for kind, data in _facts(tenant, registered, events):
        s = states.setdefault(data["order_id"], OrderState(tenant, data["order_id"]))
        apply(s, restored(kind, {"tenant": tenant, **data}))
    return {(tenant, o): (s.status, *s.counts()) for o, s in states.items()}


def _facts(
    tenant: str, registered: list[str], events: list[PackingEvent]
) -> list[tuple[type[LedgerEvent], dict[str, Any]]]:
    facts: list[tuple[type[LedgerEvent], dict[str, Any]]] = [
        (OrderRegistered, {"order_id": o, "document": {"id": o, "entries": ENTRIES}})
        for o in registered
    ]
    facts += [
        (
            PackingEventRecorded,
            {
                "order_id": e.order_id,
                "product_id": e.product_id,
                "unit": e.unit,
                "picked": e.picked,
                "packed": e.packed,
                "canceled": e.canceled,
            },
        )
        for e in events
    ]
    return facts
