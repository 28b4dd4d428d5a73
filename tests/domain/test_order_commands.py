"""The order use cases (ledger.services.order_commands) over an in-memory store.

The store's part (lock, fold, append) is PostgreSQL's and tested in tests/store;
here a fake store hands the use case an order's state and records what it decides, so
the wiring of decisions, the holding-area rule and the errors are checked in isolation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from ledger.adapters.event_store import EventStore
from ledger.domain import events as ev
from ledger.domain.amounts import Amounts
from ledger.domain.errors import OrderClosed, UnknownOrder
from ledger.domain.status import CANCELLED, IN_PROGRESS, PACKED, OrderState, apply
from ledger.services import order_commands

DOC = {"id": "o1", "entries": [{"entryId": "e1", "productId": "p1", "totalCount": 1}]}


class FakeContext:
    def __init__(self, store: FakeStore, state: OrderState) -> None:
        self.store = store
        self.state = state

    def lines(self) -> dict[str, dict[str, Amounts]]:
        return {"p1": {"H87": Amounts(0, 1, 0)}}

    def next_holding_area(self) -> int:
        self.store.numbers_taken += 1
        return self.store.numbers_taken


class FakeStore:
    """Runs a decision on the order's folded state and applies what it returns."""

    def __init__(self) -> None:
        self.state = OrderState("t", "o1")
        self.recorded: list[ev.LedgerEvent] = []
        self.numbers_taken = 0

    def run_order_command(
        self,
        tenant: str,
        order_id: str,
        decide: Callable[[Any], list[ev.LedgerEvent]],
        with_lines: bool = False,
    ) -> list[int]:
        # No rollback here: a number taken by a refused command stays counted, so the
        # tests see that the rule takes none for a command the domain refuses.
        facts = decide(FakeContext(self, self.state))
        for fact in facts:
            assert (fact.tenant, fact.order_id) == (tenant, order_id)
            apply(self.state, fact)
        self.recorded += facts
        return list(range(len(facts)))


def store() -> tuple[FakeStore, EventStore]:
    fake = FakeStore()
    return fake, cast(EventStore, fake)


def test_register_then_commands_record_their_facts() -> None:
    fake, s = store()
    order_commands.register(s, "t", "o1", DOC)
    order_commands.add_assignee(s, "t", "o1", {"id": "a-1"}, force=True)
    order_commands.change_packaging(s, "t", "o1", [{"entryId": "bag", "packedCount": 1}])
    order_commands.remove_assignee(s, "t", "o1", "a-1")
    assert [type(f) for f in fake.recorded] == [
        ev.OrderRegistered,
        ev.AssigneeAdded,
        ev.PackagingChanged,
        ev.AssigneeRemoved,
    ]
    assert fake.state.status == IN_PROGRESS


def test_the_first_packed_takes_one_holding_area_number_and_keeps_it() -> None:
    fake, s = store()
    order_commands.register(s, "t", "o1", DOC)
    order_commands.change_status(s, "t", "o1", IN_PROGRESS, "u")
    assert fake.numbers_taken == 0
    order_commands.change_status(s, "t", "o1", PACKED, "u")
    order_commands.change_status(s, "t", "o1", IN_PROGRESS, "u")
    order_commands.finish(s, "t", "o1", "u")
    assert fake.numbers_taken == 1 and fake.state.holding_area_number == 1
    assert [type(f) for f in fake.recorded].count(ev.HoldingAreaAssigned) == 1


def test_finish_records_the_exact_totals_and_returns_the_request_id() -> None:
    fake, s = store()
    order_commands.register(s, "t", "o1", DOC)
    request = order_commands.finish(s, "t", "o1", "u")
    finished = next(f for f in fake.recorded if isinstance(f, ev.OrderFinished))
    assert finished.recalculation_id == request
    assert finished.entries[0]["deliveredAmount"] == 1
    assert fake.state.status == PACKED and fake.state.holding_area_number == 1


def test_refusals_take_no_number_and_record_nothing() -> None:
    fake, s = store()
    with pytest.raises(UnknownOrder):
        order_commands.finish(s, "t", "o1", "u")
    order_commands.register(s, "t", "o1", DOC)
    order_commands.change_status(s, "t", "o1", CANCELLED, "u")
    before = list(fake.recorded)
    for command in (
        lambda: order_commands.change_status(s, "t", "o1", PACKED, "u"),
        lambda: order_commands.finish(s, "t", "o1", "u"),
        lambda: order_commands.register(s, "t", "o1", DOC),
    ):
        with pytest.raises(OrderClosed):
            command()
    assert fake.recorded == before and fake.numbers_taken == 0
