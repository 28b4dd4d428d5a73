"""The order's story in the domain: the correction decision and the public view of facts."""

from __future__ import annotations

import pytest

from ledger.domain import events as ev
from ledger.domain.amounts import Amounts
from ledger.domain.corrections import Correction, correct
from ledger.domain.errors import CorrectionRefused, InvalidCommand, OrderClosed
from ledger.domain.events import restored
from ledger.domain.status import CANCELLED, OrderState, apply
from ledger.domain.story import PUBLIC_TYPES, change_item, history_item, public_data
from tests.helpers.events import all_event_classes

FIX = Correction("c1", "p1", picked=0, packed=-2, canceled=0, unit="H87", reason="twice")


def state(status: str | None = None) -> OrderState:
    return OrderState("demo", "o1", status=status)


def test_a_correction_is_recorded_with_who_and_the_saas_token() -> None:
    (fact,) = correct(state(), FIX, None, {"H87": Amounts(0, 3, 0)}, "u1", "saas")
    assert isinstance(fact, ev.CorrectionRecorded)
    assert (fact.tenant, fact.order_id, fact.product_id) == ("demo", "o1", "p1")
    assert fact.packed == -2 and fact.user == "u1"
    assert fact.saas_token == "saas"


def test_no_total_of_the_unit_may_fall_below_zero() -> None:
    with pytest.raises(CorrectionRefused, match="packedAmount"):
        correct(state(), FIX, None, {"H87": Amounts(5, 1, 0)}, "u1", None)
    with pytest.raises(CorrectionRefused, match="packedAmount"):
        correct(state(), FIX, None, {"KGM": Amounts(0, 9, 0)}, "u1", None)  # another unit's sums
    exact = correct(state(), FIX, None, {"H87": Amounts(0, 2, 0)}, "u1", None)
    assert len(exact) == 1  # down to zero is allowed


def test_replays_record_nothing_and_other_content_conflicts() -> None:
    stored = {
        "correction_id": "c1",
        "product_id": "p1",
        "picked": 0,
        "packed": -2,
        "canceled": 0,
        "unit": "H87",
        "reason": "twice",
    }
    assert correct(state(), FIX, ("o1", stored), {}, "u1", None) == []
    with pytest.raises(CorrectionRefused, match="correctionId"):
        correct(state(), FIX, ("o1", {**stored, "reason": "other"}), {}, "u1", None)
    with pytest.raises(CorrectionRefused, match="correctionId"):
        correct(state(), FIX, ("o2", stored), {}, "u1", None)  # same id, other order


def test_cancelled_orders_and_empty_corrections_are_refused() -> None:
    with pytest.raises(OrderClosed):
        correct(state(CANCELLED), FIX, None, {"H87": Amounts(0, 3, 0)}, "u1", None)
    nothing = Correction("c2", "p1", 0, 0, 0, "H87", "r")
    with pytest.raises(InvalidCommand):
        correct(state(), nothing, None, {}, "u1", None)


def test_the_order_fold_counts_corrections_as_signed_deltas() -> None:
    s = state()
    doc = {"id": "o1", "entries": [{"productId": "p1", "totalCount": 2}]}
    apply(s, ev.OrderRegistered(tenant="demo", order_id="o1", document=doc))
    line = {"tenant": "demo", "order_id": "o1", "product_id": "p1", "unit": "H87", "picked": 0}
    apply(s, restored(ev.PackingEventRecorded, {**line, "packed": 3, "canceled": 0}))
    assert s.status == "PRE_PACKED"
    apply(s, restored(ev.CorrectionRecorded, {**line, "packed": -2, "canceled": 0}))
    assert s.status == "IN_PROGRESS" and s.counts() == (2, 1, 0)


def test_every_fact_has_a_public_type_and_never_shows_the_saas_token() -> None:
    assert set(PUBLIC_TYPES) == all_event_classes()
    assert len(set(PUBLIC_TYPES.values())) == len(PUBLIC_TYPES)
    scan = {
        "tenant": "demo",
        "order_id": "o1",
        "event_id": "e1",
        "product_id": "p1",
        "delivery_cycle": None,
        "picked": 1,
        "packed": 1,
        "canceled": 0,
        "supplier_id": None,
        "unit": "H87",
        "event_time": "2024-05-01T10:00:00.000Z",
        "site": "main",
        "book_product": None,
        "user": "u1",
        "saas_token": "secret",
        "timestamp": {"_type_": "datetime_iso", "_data_": "2024-05-01T10:00:01.123456+00:00"},
    }
    item = change_item(7, ev.PackingEventRecorded, scan)
    assert item["recordedAt"] == "2024-05-01T10:00:01.123Z"
    assert item["orderId"] == "o1" and item["type"] == "PackingEventRecorded"
    assert "secret" not in str(item)
    assert history_item(7, ev.PackingEventRecorded, scan)["user"] == "u1"
    assert "secret" not in str(
        public_data(ev.CorrectionRecorded, {**scan, "correction_id": "c", "reason": "r"})
    )
