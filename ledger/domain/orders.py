"""Order commands: what a pack station may do to an order, decided on its state. No I/O.

Each decision takes the order's state (folded from its stream by ledger.domain.status) and
returns the facts to record, or raises a domain error that the API maps to a status
code. The store runs decisions under its write lock, so the state cannot change
between the decision and the append (a cancellation and a write never interleave).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.domain import events as ev
from ledger.domain.errors import (
    AssigneeTaken,
    InvalidCommand,
    OrderClosed,
    UnknownOrder,
)
from ledger.domain.status import CANCELLED, PACKED, STATUSES, OrderState
from ledger.domain.units import packed_in_pieces


@dataclass(frozen=True)
class Fact:
    """An event to record, before the store gives it a stream position."""

    cls: type[ev.LedgerEvent]
    fields: dict[str, Any] = field(default_factory=dict)


def _open(state: OrderState) -> None:
    if state.status == CANCELLED:
        raise OrderClosed(f"order '{state.order_id}' is CANCELLED")


def _known(state: OrderState) -> None:
    _open(state)
    if not state.registered:
        raise UnknownOrder(f"order '{state.order_id}' is not registered")


def takes_holding_area(state: OrderState, status: str) -> bool:
    """Whether this command takes the order's holding area number: its first PACKED.

    The one holding-area rule: a registered, open order gets a number from its tenant's
    sequence the first time it becomes PACKED (an explicit PATCH or `finish`), and keeps
    it. The command that takes one records HoldingAreaAssigned; a refusal rolls back.
    """
    return (
        status == PACKED
        and state.registered
        and state.status != CANCELLED
        and state.holding_area_number is None
    )


def register(state: OrderState, document: dict[str, Any]) -> list[Fact]:
    """(Re-)register the order document; its ledger is kept."""
    _open(state)
    if state.document == document:
        return []  # idempotent: the same document again records nothing
    return [Fact(ev.OrderRegistered, {"document": document})]


def change_status(
    state: OrderState, status: str, user: str | None, next_holding_area: int | None = None
) -> list[Fact]:
    _known(state)
    if status not in STATUSES:
        raise InvalidCommand(f"packingStatus: must be one of {', '.join(STATUSES)}")
    if status == CANCELLED:
        return [Fact(ev.OrderCancelled, {"user": user})]
    facts = [Fact(ev.PackingStatusChanged, {"status": status, "user": user})]
    if status == PACKED and state.holding_area_number is None and next_holding_area is not None:
        facts.append(Fact(ev.HoldingAreaAssigned, {"number": next_holding_area}))
    return facts


def add_assignee(state: OrderState, assignee: dict[str, Any], force: bool) -> list[Fact]:
    _known(state)
    others = [a for a in state.assignees if a.get("id") != assignee.get("id")]
    if others and not force:
        raise AssigneeTaken(
            f"order '{state.order_id}' already has an assignee; use force=true to replace"
        )
    replaced = [str(a.get("id")) for a in others] if force else []
    return [Fact(ev.AssigneeAdded, {"assignee": assignee, "replaced": replaced})]


def remove_assignee(state: OrderState, assignee_id: str) -> list[Fact]:
    _open(state)
    if not any(a.get("id") == assignee_id for a in state.assignees):
        return []  # already gone: DELETE is idempotent
    return [Fact(ev.AssigneeRemoved, {"assignee_id": assignee_id})]


def change_packaging(state: OrderState, packaging: list[dict[str, Any]]) -> list[Fact]:
    _known(state)
    return [Fact(ev.PackagingChanged, {"packaging": packaging})]


def calculation_entries(
    state: OrderState, lines: dict[str, list[int]], units: dict[str, str]
) -> list[dict[str, Any]]:
    """The calculations body's entries: one per order entry, with its packed total.

    For an unregistered order, one entry per product seen, keyed by productId
    (DESIGN.md decision 7).
    """
    entries: list[dict[str, Any]] = []
    if state.registered:
        for entry in state.entries():
            product = str(entry.get("productId"))
            packed = lines.get(product, [0, 0])[0]
            unit = units.get(product) or entry.get("orderUnit")
            entries.append(
                {
                    "entryId": str(entry.get("entryId") or product),
                    "deliveredAmount": packed,
                    "deliveredAmountInPc": packed_in_pieces(packed, unit, entry),
                    "unit": unit,
                }
            )
    else:
        for product, (packed, _) in sorted(lines.items()):
            unit = units.get(product)
            entries.append(
                {
                    "entryId": product,
                    "deliveredAmount": packed,
                    "deliveredAmountInPc": packed_in_pieces(packed, unit),
                    "unit": unit,
                }
            )
    return entries


def finish(
    state: OrderState,
    lines: dict[str, list[int]],
    units: dict[str, str],
    recalculation_id: str,
    user: str | None,
    next_holding_area: int | None = None,
) -> list[Fact]:
    """PACKED, assignees removed, and the calculations request to send (outbox)."""
    _known(state)
    facts = [
        Fact(
            ev.OrderFinished,
            {
                "recalculation_id": recalculation_id,
                "entries": calculation_entries(state, lines, units),
                "user": user,
            },
        )
    ]
    if state.holding_area_number is None and next_holding_area is not None:
        facts.append(Fact(ev.HoldingAreaAssigned, {"number": next_holding_area}))
    return facts
