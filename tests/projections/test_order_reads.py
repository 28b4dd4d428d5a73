"""An order's detail and the packlist read the order_status row alone, lines included.

The row carries its line sums, folded with the status and counts derived from them; a
packlist of 200 orders read each order's lines from line_totals too (a subquery per
order) and waited for both views. Now the statement touches order_status only, by the
packlist index however many other orders the store holds, and the reads do not wait for
line_totals: a line_totals held back (a stuck runner, a rebuild's swap) no longer makes
order reads stale.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import psycopg

from devtools.harness.service import EXAMPLE_EVENT, Service, auth
from projections.base import lock_key
from projections.read import DEFAULT_TIMEOUT, PACKLIST
from tests.helpers.plans import plan

DAY = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()


def test_the_packlist_reads_order_status_alone_by_its_index_on_a_store_of_many_orders(
    db_url: str,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        # 20,000 orders known from scans only, 2,000 of other days, 200 of the day.
        conn.execute(
            "INSERT INTO order_status (tenant, order_id, lines) "
            "SELECT 'demo', 's' || i, '{\"p1\": {\"H87\": [1, 1, 0]}}' "
            "FROM generate_series(1, 20000) i"
        )
        conn.execute(
            "INSERT INTO order_status (tenant, order_id, registered, document, site_code, "
            "delivery_date, window_end) "
            "SELECT 'demo', 'r' || i, true, '{}', 'main', date '2024-05-01' + (i % 11), "
            "timestamptz '2024-05-01 12:00Z' FROM generate_series(1, 2200) i"
        )
        for line in ("line_totals", "order_status"):
            conn.execute(f"ANALYZE {line}")
        explained = plan(conn, PACKLIST, ("demo", "main", date(2024, 5, 1), False))
    assert "order_status_packlist_idx" in explained, explained
    assert "line_totals" not in explained, explained
    assert "Seq Scan" not in explained, explained


def document(order_id: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "siteCode": "main",
        "delivery": {
            "deliveryTimeModel": {"deliveryDate": DAY},
            "deliveryWindow": {"deliveryTimeTo": f"{DAY}T12:00:00Z"},
        },
        "entries": [
            {"entryId": "e1", "productId": "p1", "totalCount": 5, "orderUnit": "H87"},
            {"entryId": "e2", "productId": "p2", "totalCount": 5, "orderUnit": "H87"},
        ],
    }


def test_order_reads_do_not_wait_for_line_totals(service: Service, db_url: str) -> None:
    c = service.client
    r = c.put("/pick-pack/demo/orders/o1", json=document("o1"), headers=auth())
    assert r.status_code == 200, r.text
    with psycopg.connect(db_url) as held:
        # line_totals' runner lock taken, as a busy runner or a rebuild's swap would:
        # order_status goes on applying, line_totals does not.
        held.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("line_totals"),))
        for i, product in enumerate(("p1", "p1", "p2")):
            body = {**EXAMPLE_EVENT, "eventId": f"x{i}", "orderNumber": "o1",
                    "productId": product, "unit": "H87", "pickedAmount": 0,
                    "packedAmount": 2, "canceledAmount": 0}  # fmt: skip
            r = c.post("/pick-pack/demo/events", json=body, headers=auth())
            assert r.status_code == 200, r.text
        reads: list[httpx.Response] = []
        t0 = time.monotonic()
        reads.append(c.get("/pick-pack/demo/orders/o1", headers=auth()))
        reads.append(
            c.get(
                "/pick-pack/demo/orders",
                params={"siteCode": "main", "deliveryDate": DAY},
                headers=auth(),
            )
        )
        seconds = time.monotonic() - t0
        held.rollback()
    assert seconds < DEFAULT_TIMEOUT / 2, seconds
    detail, packlist = (r.json() for r in reads)
    for r in reads:
        assert r.status_code == 200 and "X-Pickpack-Stale" not in r.headers, r.headers
    assert [e["packedCount"] for e in detail["entries"]] == [4, 2]
    assert [e["packedCount"] for e in packlist[0]["entries"]] == [4, 2]
