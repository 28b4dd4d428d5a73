"""The domain's decisions, directly: no database, no HTTP (ledger/domain)."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.harness.support import packing_event
from ledger.domain import events as ev
from ledger.domain import orders
from ledger.domain import recalculation as rc
from ledger.domain.amounts import Amounts
from ledger.domain.errors import AssigneeTaken, InvalidCommand, OrderClosed, UnknownOrder
from ledger.domain.events import event_class, restored
from ledger.domain.packing import Verdict, decide
from ledger.domain.status import (
    CANCELLED,
    IN_PROGRESS,
    INITIAL,
    PACKED,
    PRE_PACKED,
    OrderState,
    apply,
)

DOC = {
    "id": "o1",
    "entries": [
        {"entryId": "e1", "productId": "p1", "totalCount": 2, "orderUnit": "H87"},
        {
            "entryId": "e2",
            "productId": "p2",
            "totalCount": 1,
            "orderUnit": "GRM",
            "weightDependent": True,
            "unitPricingMeasure": {"unitCode": "GRM", "value": "500"},
        },
    ],
}
ALICE = {"id": "a-1", "siteCode": "main", "firstName": "A", "lastName": "L"}
BOB = {"id": "b-2", "siteCode": "main", "firstName": "B", "lastName": "M"}


def state_after(*facts: tuple[type[ev.LedgerEvent], dict[str, Any]]) -> OrderState:
    state = OrderState("t", "o1")
    for cls, data in facts:
        apply(state, restored(cls, {"tenant": "t", "order_id": "o1", **data}))
    return state


def registered() -> OrderState:
    return state_after((ev.OrderRegistered, {"document": DOC}))


def scan(
    product: str, packed: int = 0, canceled: int = 0, unit: str = "H87"
) -> ev.PackingEventRecorded | None:
    """A recorded scan as the folds get it: restored from the fields they read."""
    state = {"tenant": "t", "order_id": "o1", "product_id": product, "unit": unit}
    return restored(
        ev.PackingEventRecorded, {**state, "picked": 0, "packed": packed, "canceled": canceled}
    )


# -- packing.decide ----------------------------------------------------------------------


def test_decide_records_new_events_and_spots_duplicates_and_conflicts() -> None:
    first = packing_event("e1", packed=1)
    again = packing_event("e1", packed=1)
    other = packing_event("e1", packed=2)
    recorded = {("demo", "old"): packing_event("old").content_hash()}
    decisions = decide(
        [first, again, other, packing_event("old"), packing_event("old", packed=5)],
        recorded,
        set(),
    )
    assert [d.verdict for d in decisions] == [
        Verdict.RECORD,
        Verdict.DUPLICATE,  # same eventId, same content: earlier in the same batch
        Verdict.CONFLICT,  # same eventId, other content
        Verdict.DUPLICATE,  # recorded before
        Verdict.CONFLICT,
    ]


def test_decide_refuses_events_of_closed_orders_but_a_retry_stays_a_duplicate() -> None:
    done = packing_event("e1", order_id="o9")
    closed = {("demo", "o9")}
    assert decide([packing_event("e2", order_id="o9")], {}, closed)[0].verdict is (
        Verdict.ORDER_CLOSED
    )
    # the event recorded before the cancellation, retried: still a duplicate, not 409
    verdicts = decide([done], {("demo", "e1"): done.content_hash()}, closed)
    assert verdicts[0].verdict is Verdict.DUPLICATE


def test_decide_uses_the_hashes_it_is_given() -> None:
    event = packing_event("e1")
    wrong = b"\x00" * 32
    assert decide([event], {("demo", "e1"): wrong}, set(), hashes=[wrong])[0].verdict is (
        Verdict.DUPLICATE
    )


def test_event_ids_are_per_tenant() -> None:
    a = packing_event("e1", tenant="a")
    b = packing_event("e1", tenant="b", packed=9)
    assert [d.verdict for d in decide([a, b], {}, set())] == [Verdict.RECORD, Verdict.RECORD]


# -- status rules ------------------------------------------------------------------------


def test_status_is_derived_from_activity_and_resolution() -> None:
    state = registered()
    assert state.status == INITIAL
    apply(state, scan("p1", packed=1))
    assert state.status == IN_PROGRESS
    apply(state, scan("p1", canceled=1))
    assert state.status == IN_PROGRESS  # the weighed entry has nothing packed yet
    apply(state, scan("p2", packed=700, unit="GRM"))
    assert state.status == PRE_PACKED
    assert state.counts() == (3, 701, 1)


def test_an_assignee_makes_an_order_in_progress_and_finish_packs_it() -> None:
    state = registered()
    apply(state, ev.AssigneeAdded(tenant="t", order_id="o1", assignee=ALICE, replaced=[]))
    assert state.status == IN_PROGRESS and state.assignees == [ALICE]
    apply(
        state,
        ev.OrderFinished(tenant="t", order_id="o1", recalculation_id="r", entries=[], user=None),
    )
    assert state.status == PACKED and state.assignees == []
    apply(state, scan("p1", packed=2))
    assert state.status == PACKED  # explicit statuses are not derived again


def test_cancelled_is_terminal() -> None:
    state = registered()
    apply(state, ev.OrderCancelled(tenant="t", order_id="o1", user=None))
    apply(state, ev.PackingStatusChanged(tenant="t", order_id="o1", status=IN_PROGRESS, user=None))
    apply(state, scan("p1", packed=2))
    assert state.status == CANCELLED and state.lines == {}


def test_an_unknown_event_class_changes_nothing() -> None:
    state = registered()
    apply(state, restored(event_class("ledger.events:NoSuchEvent"), {"anything": 1}))
    assert state.status == INITIAL


# -- order commands ----------------------------------------------------------------------


def classes(facts: list[ev.LedgerEvent]) -> list[type[ev.LedgerEvent]]:
    return [type(f) for f in facts]


def test_register_is_idempotent_and_refused_once_cancelled() -> None:
    assert classes(orders.register(OrderState("t", "o1"), DOC)) == [ev.OrderRegistered]
    assert orders.register(registered(), DOC) == []
    cancelled = state_after((ev.OrderRegistered, {"document": DOC}), (ev.OrderCancelled, {}))
    with pytest.raises(OrderClosed):
        orders.register(cancelled, DOC)


def test_commands_on_an_unknown_order_are_refused() -> None:
    unknown = OrderState("t", "o1")
    for command in (
        lambda: orders.change_status(unknown, IN_PROGRESS, None),
        lambda: orders.add_assignee(unknown, ALICE, True),
        lambda: orders.change_packaging(unknown, []),
        lambda: orders.finish(unknown, {}, "r", None),
    ):
        with pytest.raises(UnknownOrder):
            command()


def test_change_status() -> None:
    state = registered()
    assert classes(orders.change_status(state, CANCELLED, "u")) == [ev.OrderCancelled]
    facts = orders.change_status(state, PACKED, "u", next_holding_area=7)
    assert classes(facts) == [ev.PackingStatusChanged, ev.HoldingAreaAssigned]
    assert facts[1] == ev.HoldingAreaAssigned(tenant="t", order_id="o1", number=7)
    with pytest.raises(InvalidCommand):
        orders.change_status(state, "DONE", "u")


def test_the_holding_area_rule() -> None:
    state = registered()
    assert orders.takes_holding_area(state, PACKED)
    assert not orders.takes_holding_area(state, IN_PROGRESS)
    assert not orders.takes_holding_area(OrderState("t", "o1"), PACKED)  # not registered
    numbered = state_after(
        (ev.OrderRegistered, {"document": DOC}), (ev.HoldingAreaAssigned, {"number": 3})
    )
    assert not orders.takes_holding_area(numbered, PACKED)  # kept, never a second one
    cancelled = state_after((ev.OrderRegistered, {"document": DOC}), (ev.OrderCancelled, {}))
    assert not orders.takes_holding_area(cancelled, PACKED)
    # a command given a number for an order that has one records none
    assert classes(orders.change_status(numbered, PACKED, None, 4)) == [ev.PackingStatusChanged]


def test_assignees_force_semantics_and_idempotent_removal() -> None:
    state = state_after(
        (ev.OrderRegistered, {"document": DOC}),
        (ev.AssigneeAdded, {"assignee": ALICE, "replaced": []}),
    )
    with pytest.raises(AssigneeTaken):
        orders.add_assignee(state, BOB, force=False)
    # "Commands are idempotent": the assignee the order already has again records nothing
    assert orders.add_assignee(state, ALICE, force=False) == []
    (added,) = orders.add_assignee(state, BOB, force=True)
    assert isinstance(added, ev.AssigneeAdded) and added.replaced == ["a-1"]
    assert classes(orders.remove_assignee(state, "a-1")) == [ev.AssigneeRemoved]
    assert orders.remove_assignee(state, "zz") == []


def test_finish_sends_exact_totals_per_entry() -> None:
    lines = {"p1": {"H87": Amounts(0, 2, 0)}, "p2": {"GRM": Amounts(0, 750, 0)}}
    facts = orders.finish(registered(), lines, "r1", "u", next_holding_area=1)
    assert classes(facts) == [ev.OrderFinished, ev.HoldingAreaAssigned]
    assert isinstance(facts[0], ev.OrderFinished)
    entries = facts[0].entries
    assert [(e["entryId"], e["deliveredAmount"], e["deliveredAmountInPc"]) for e in entries] == [
        ("e1", 2, 2),
        ("e2", 750, 2),
    ]


# -- recalculation decisions -------------------------------------------------------------


def test_a_job_fails_cancelled_and_unknown_orders_with_the_reason() -> None:
    cancelled = state_after((ev.OrderRegistered, {"document": DOC}), (ev.OrderCancelled, {}))
    queued = rc.queue_for_job(cancelled, {}, automatic=False)
    assert queued == rc.Queued(rc.FAILURE, "order 'o1' is CANCELLED", None)
    unknown = rc.queue_for_job(OrderState("t", "o1"), {}, automatic=False)
    assert unknown == rc.Queued(rc.FAILURE, "order 'o1' is unknown to the ledger", None)


def test_a_job_queues_totals_and_an_automatic_job_skips_unchanged_orders() -> None:
    lines = {"p1": {"H87": Amounts(0, 1, 0)}}
    queued = rc.queue_for_job(registered(), lines, automatic=False)
    assert queued is not None and queued.status == rc.PENDING and queued.body is not None
    sent = queued.body["entries"]
    assert rc.queue_for_job(registered(), lines, automatic=True, known=[sent]) is None
    more = {"p1": {"H87": Amounts(0, 2, 0)}}
    assert rc.queue_for_job(registered(), more, True, known=[sent]) is not None
    # an order without any registered document but with scans is still sent
    assert rc.queue_for_job(OrderState("t", "o1"), lines, automatic=False) is not None


def test_job_body_is_the_specs_recalculation_job() -> None:
    from datetime import UTC, datetime

    started = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    job = {
        "job_id": "j1",
        "job_type": rc.MANUAL,
        "started_at": started,
        "complete": True,
        "finished_at": None,
    }
    rows = [
        {"order_id": "o1", "status": rc.SUCCESS, "last_message": None},
        {"order_id": "o2", "status": rc.PENDING, "last_message": None},
    ]
    body = rc.job_body(job, rows)
    assert body["jobStatus"] == rc.IN_PROGRESS and "finishedAt" not in body
    assert body["orders"][0]["message"] == rc.SUCCESS_MESSAGE
    assert body["startedAt"] == "2030-01-01T12:00:00.000Z"
    assert rc.job_body({**job, "complete": False}, rows[:1])["jobStatus"] == rc.IN_PROGRESS
