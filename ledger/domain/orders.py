"""Order commands: what a pack station may do to an order, decided on its state. No I/O.

Each decision takes the order's state (folded from its stream by ledger.domain.status) and
returns the facts to record (event classes of ledger.domain.events, constructed here; the
store gives them their stream position), or raises a domain error that the API maps to a status
code. The store runs decisions under its write lock, so the state cannot change
between the decision and the append (a cancellation and a write never interleave).
"""

from __future__ import annotations

from typing import Any

from ledger.domain import counting
from ledger.domain import events as ev
from ledger.domain.counting import Lines
from ledger.domain.errors import (
    AssigneeTaken,
    InvalidCommand,
    OrderClosed,
    UnknownOrder,
)
from ledger.domain.status import CANCELLED, PACKED, STATUSES, OrderState


def _open(state: OrderState) -> None:
    if state.status == CANCELLED:
        raise OrderClosed(f"order '{state.order_id}' is CANCELLED")


def _known(state: OrderState) -> None:
    _open(state)
    if not state.registered:
        raise UnknownOrder(f"order '{state.order_id}' is not registered")


def takes_holding_area(state: OrderState, status: str) -> bool:
    """Whether this command takes the order's holding area number: its first PACKED.

    The one holding-area rule: a registered, open order gets the next number of its site
    and delivery date the first time it becomes PACKED (an explicit PATCH or `finish`),
    and keeps it. The command that takes one records HoldingAreaAssigned; a refusal rolls back.
    """
    return (
        status == PACKED
        and state.registered
        and state.status != CANCELLED
        and state.holding_area_number is None
    )


def register(state: OrderState, document: dict[str, Any]) -> list[ev.LedgerEvent]:
    """(Re-)register the order document; its ledger is kept."""
    _open(state)
    if state.document == document:
        return []  # idempotent: the same document again records nothing
    return [ev.OrderRegistered(tenant=state.tenant, order_id=state.order_id, document=document)]


def change_status(
    state: OrderState, status: str, user: str | None, next_holding_area: int | None = None
) -> list[ev.LedgerEvent]:
    _known(state)
    if status not in STATUSES:
        raise InvalidCommand(f"packingStatus: must be one of {', '.join(STATUSES)}")
    if status == CANCELLED:
        return [ev.OrderCancelled(tenant=state.tenant, order_id=state.order_id, user=user)]
    if status == state.status:
        return []  # the status it already has records nothing ("Commands are idempotent")
    facts: list[ev.LedgerEvent] = [
        ev.PackingStatusChanged(
            tenant=state.tenant, order_id=state.order_id, status=status, user=user
        )
    ]
    if status == PACKED and state.holding_area_number is None and next_holding_area is not None:
        facts.append(_holding_area(state, next_holding_area))
    return facts


def add_assignee(state: OrderState, assignee: dict[str, Any], force: bool) -> list[ev.LedgerEvent]:
    _known(state)
    others = [a for a in state.assignees if a.get("id") != assignee.get("id")]
    if others and not force:
        raise AssigneeTaken(
            f"order '{state.order_id}' already has an assignee; use force=true to replace"
        )
    if state.assignees == [assignee]:
        return []  # already the order's assignee: nothing recorded ("Commands are idempotent")
    replaced = [str(a.get("id")) for a in others] if force else []
    return [
        ev.AssigneeAdded(
            tenant=state.tenant, order_id=state.order_id, assignee=assignee, replaced=replaced
        )
    ]


def remove_assignee(state: OrderState, assignee_id: str) -> list[ev.LedgerEvent]:
    _open(state)
    if not any(a.get("id") == assignee_id for a in state.assignees):
        return []  # already gone: DELETE is idempotent
    return [
        ev.AssigneeRemoved(tenant=state.tenant, order_id=state.order_id, assignee_id=assignee_id)
    ]


def change_packaging(state: OrderState, packaging: list[dict[str, Any]]) -> list[ev.LedgerEvent]:
    _known(state)
    if state.packaging == packaging:
        return []  # the same packaging again records nothing ("Commands are idempotent")
    return [ev.PackagingChanged(tenant=state.tenant, order_id=state.order_id, packaging=packaging)]


def calculation_entries(state: OrderState, lines: Lines) -> list[dict[str, Any]]:
    """The calculations body's entries (semantics.md, "Recalculation"; split by "A product in
    several entries", "Units are never mixed")."""
    return counting.calculation_entries(state.entries() if state.registered else None, lines)


def finish(
    state: OrderState,
    lines: Lines,
    recalculation_id: str,
    user: str | None,
    next_holding_area: int | None = None,
) -> list[ev.LedgerEvent]:
    """PACKED, assignees removed, and the calculations request to send (outbox).

    semantics.md, "Commands are idempotent": when the packed totals equal those of the last finish,
    nothing is
    queued (the fact keeps an empty recalculation id), and when the order is also
    already PACKED without assignees, nothing is recorded at all.
    """
    _known(state)
    entries = calculation_entries(state, lines)
    unchanged = state.last_finish is not None and entries == state.last_finish
    if unchanged and state.status == PACKED and not state.assignees:
        return []
    facts: list[ev.LedgerEvent] = [
        ev.OrderFinished(
            tenant=state.tenant,
            order_id=state.order_id,
            recalculation_id="" if unchanged else recalculation_id,
            entries=entries,
            user=user,
        )
    ]
    if state.holding_area_number is None and next_holding_area is not None:
        facts.append(_holding_area(state, next_holding_area))
    return facts


def _holding_area(state: OrderState, number: int) -> ev.HoldingAreaAssigned:
    return ev.HoldingAreaAssigned(tenant=state.tenant, order_id=state.order_id, number=number)
