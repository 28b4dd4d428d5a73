"""Order use cases: each runs one pure decision of ledger.domain.orders under the lock.

The store folds the order's stream inside its locked transaction and appends what the
decision returns (EventStore.run_order_command), so a cancellation and any other write
never interleave. Domain errors (ledger.domain.errors) propagate with nothing recorded;
the API maps them to status codes in one place (api/errors.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from ledger.adapters.event_store import EventStore
from ledger.adapters.order_context import OrderContext
from ledger.domain import orders
from ledger.domain.events import LedgerEvent
from ledger.domain.status import PACKED


def register(store: EventStore, tenant: str, order_id: str, document: dict[str, Any]) -> None:
    """(Re-)register a normalized order document."""
    store.run_order_command(tenant, order_id, lambda ctx: orders.register(ctx.state, document))


def change_status(
    store: EventStore, tenant: str, order_id: str, status: str, user: str | None
) -> None:
    def decide(ctx: OrderContext) -> list[LedgerEvent]:
        # The sequence row is advanced in the same transaction, so a refusal gives it back.
        # (none for a PATCH to the status the order already has: it records nothing)
        takes = status != ctx.state.status and orders.takes_holding_area(ctx.state, status)
        return orders.change_status(
            ctx.state, status, user, ctx.next_holding_area() if takes else None
        )

    # with its scans: the PATCH compares with the status clients see (semantics.md, "Commands are
    # idempotent")
    store.run_order_command(tenant, order_id, decide, with_lines=True)


def change_packaging(
    store: EventStore, tenant: str, order_id: str, packaging: list[dict[str, Any]]
) -> None:
    store.run_order_command(
        tenant, order_id, lambda ctx: orders.change_packaging(ctx.state, packaging)
    )


def add_assignee(
    store: EventStore, tenant: str, order_id: str, assignee: dict[str, Any], force: bool
) -> None:
    store.run_order_command(
        tenant, order_id, lambda ctx: orders.add_assignee(ctx.state, assignee, force)
    )


def remove_assignee(store: EventStore, tenant: str, order_id: str, assignee_id: str) -> None:
    store.run_order_command(
        tenant, order_id, lambda ctx: orders.remove_assignee(ctx.state, assignee_id)
    )


def finish(store: EventStore, tenant: str, order_id: str, user: str | None) -> str:
    """PACKED, assignees removed, the exact totals queued for the Order Service (outbox).

    Returns the recalculation request's id.
    """
    recalculation_id = uuid.uuid4().hex

    def decide(ctx: OrderContext) -> list[LedgerEvent]:
        lines = ctx.lines()
        takes = orders.takes_holding_area(ctx.state, PACKED)
        area = ctx.next_holding_area() if takes else None
        return orders.finish(ctx.state, lines, recalculation_id, user, area)

    store.run_order_command(tenant, order_id, decide, with_lines=True)
    return recalculation_id
