"""The cutover's pure rules: Emporix feed items as scans, tallies, totals and differences."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.domain.amounts import Amounts
from ledger.domain.cutover import (
    Difference,
    InvalidFeedItem,
    Tally,
    add_to_totals,
    differences,
    from_feed_item,
)
from ledger.domain.order_import import open_orders_query
from ledger.domain.packing import PackingEvent, Verdict

ITEM: dict[str, Any] = {
    "eventId": "e1",
    "productId": "p1",
    "orderNumber": "o1",
    "timestamp": "2026-11-02T08:15:00.120+01:00",
    "pickedAmount": 2,
    "packedAmount": 2,
    "canceledAmount": 0,
    "packedAmountInPc": 2,
    "user": "picker-7",
    "site": "store-12",
    "unit": "H87",
}


def test_a_feed_item_becomes_the_scan_with_its_own_id_time_site_and_user() -> None:
    event, user = from_feed_item("acme", ITEM)
    assert user == "picker-7"
    assert event == PackingEvent(
        tenant="acme",
        event_id="e1",
        order_id="o1",
        product_id="p1",
        unit="H87",
        event_time="2026-11-02T07:15:00.120Z",
        site="store-12",
        picked=2,
        packed=2,
        canceled=0,
    )


def test_the_same_scan_sent_to_both_services_has_the_same_content() -> None:
    """Side by side, a scanner may send one scan to both: the import must see it as the
    same content (absent fields stay absent, amounts absent are 0, as for a posted scan)."""
    sent = {k: v for k, v in ITEM.items() if k not in ("canceledAmount", "packedAmountInPc")}
    posted = PackingEvent(
        tenant="acme",
        event_id="e1",
        order_id="o1",
        product_id="p1",
        unit="H87",
        event_time="2026-11-02T07:15:00.120Z",
        site="store-12",
        picked=2,
        packed=2,
    )
    event, _ = from_feed_item("acme", sent)
    assert event.content_hash() == posted.content_hash()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"eventId": None}, "eventId"),
        ({"site": None}, "site"),
        ({"unit": ""}, "unit"),
        ({"packedAmount": -1}, "packedAmount"),
        ({"pickedAmount": 1.5}, "pickedAmount"),
        ({"canceledAmount": True}, "canceledAmount"),
        ({"timestamp": "2026-11-02T08:15:00"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"user": "a\nb"}, "user"),
        ({"orderNumber": "o 1"}, "orderNumber"),
        ({"bookProduct": "yes"}, "bookProduct"),
    ],
)
def test_a_feed_item_this_service_would_refuse_is_refused(
    change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidFeedItem, match=problem):
        from_feed_item("acme", {**ITEM, **change})


def test_tally_counts_each_verdict() -> None:
    tally = Tally(read=4)
    for verdict in (Verdict.RECORD, Verdict.DUPLICATE, Verdict.CONFLICT, Verdict.ORDER_CLOSED):
        tally.count(verdict)
    assert tally.as_dict() == {
        "read": 4,
        "recorded": 1,
        "already_there": 1,
        "conflicting": 1,
        "refused": 1,
    }
    assert Tally.from_dict(tally.as_dict()).as_dict() == tally.as_dict()


def test_totals_per_line_and_their_differences() -> None:
    theirs: dict[tuple[str, str, str], Amounts] = {}
    ours: dict[tuple[str, str, str], Amounts] = {}
    add_to_totals(theirs, [ITEM, {**ITEM, "eventId": "e2", "packedAmount": 1}])
    add_to_totals(theirs, [{**ITEM, "productId": "p2", "unit": "GRM", "packedAmount": 500}])
    add_to_totals(ours, [ITEM, {**ITEM, "eventId": "e2", "packedAmount": 1}])
    assert theirs[("o1", "p1", "H87")] == Amounts(4, 3, 0)
    assert differences(theirs, ours) == [
        Difference("o1", "p2", "GRM", emporix=Amounts(2, 500, 0), here=Amounts(0, 0, 0))
    ]
    assert differences(ours, ours) == []


def test_until_leaves_later_events_out() -> None:
    totals: dict[tuple[str, str, str], Amounts] = {}
    until = datetime(2026, 11, 2, 7, 15, tzinfo=UTC)
    add_to_totals(totals, [ITEM, {**ITEM, "timestamp": "2026-11-02T07:00:00Z"}], until)
    assert totals == {("o1", "p1", "H87"): Amounts(2, 2, 0)}


def test_open_orders_query_names_site_window_and_open_statuses() -> None:
    assert open_orders_query("main", "2026-12-01", "2026-12-02") == (
        'siteCode:main deliveryWindow.deliveryDate:(>="2026-12-01" AND <="2026-12-02")'
        " status:(CREATED,CONFIRMED)"
    )
    assert open_orders_query("main", "2026-12-01") == (
        'siteCode:main deliveryWindow.deliveryDate:>="2026-12-01" status:(CREATED,CONFIRMED)'
    )
    for bad in (
        ("main", "2026-13-01", None),
        ("main", "2026-12-02", "2026-12-01"),
        ("a b", "2026-12-01", None),
    ):
        with pytest.raises(ValueError):
            open_orders_query(*bad)
