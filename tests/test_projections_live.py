"""Projections follow the store live: totals and packing state, read straight after writes."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from ledger import orders
from tests.conftest import EXAMPLE_EVENT, Service


def wait_caught_up(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            head = conn.execute("SELECT coalesce(max(notification_id),0) FROM stored_events")
            h = head.fetchone()[0]  # type: ignore[index]
            rows = conn.execute(
                "SELECT min(notification_id) FROM notification_tracking "
                "WHERE application_name IN ('line_totals', 'order_status')"
            ).fetchone()
            count = conn.execute(
                "SELECT count(*) FROM notification_tracking "
                "WHERE application_name IN ('line_totals', 'order_status')"
            ).fetchone()
            if h == 0 or (count[0] == 2 and rows[0] >= h):  # type: ignore[index]
                return
            time.sleep(0.02)
    raise AssertionError("projections did not catch up")


def ev(**kw: Any) -> dict[str, Any]:
    return {**EXAMPLE_EVENT, **kw}


ORDER = {
    "id": "o1",
    "siteCode": "main",
    "entries": [
        {"entryId": "e1", "productId": "p1", "totalCount": 2, "orderUnit": "H87"},
        {"entryId": "e2", "productId": "p2", "totalCount": 1, "orderUnit": "H87"},
    ],
}


def test_line_totals_sum_the_packing_events(service: Service) -> None:
    service.post_event(ev(eventId="a", orderNumber="o1", productId="p1", pickedAmount=2,
                          packedAmount=1, canceledAmount=0))
    service.post_event(ev(eventId="b", orderNumber="o1", productId="p1", pickedAmount=0,
                          packedAmount=1, canceledAmount=1, timestamp="2020-09-14T13:40:00Z"))
    wait_caught_up(service.runtime.database.url)
    with psycopg.connect(service.runtime.database.url) as conn:
        row = conn.execute(
            "SELECT picked, packed, canceled, events, first_event_at < last_event_at "
            "FROM line_totals WHERE tenant='demo' AND order_id='o1' AND product_id='p1'"
        ).fetchone()
    assert row == (2, 2, 1, 2, True)


def test_order_status_moves_from_initial_to_pre_packed(service: Service) -> None:
    store = service.runtime.store
    store.run_order_command("demo", "o1", lambda c: orders.register(c.state, ORDER))
    url = service.runtime.database.url

    def status() -> str:
        wait_caught_up(url)
        with psycopg.connect(url) as conn:
            r = conn.execute("SELECT packing_status FROM order_status WHERE order_id='o1'")
            return str(r.fetchone()[0])  # type: ignore[index]

    assert status() == "INITIAL"
    service.post_event(ev(eventId="1", orderNumber="o1", productId="p1", packedAmount=2))
    assert status() == "IN_PROGRESS"
    service.post_event(ev(eventId="2", orderNumber="o1", productId="p2", packedAmount=0,
                          canceledAmount=1))
    assert status() == "PRE_PACKED"
