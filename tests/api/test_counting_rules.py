"""The counting rules over HTTP: what clients see and what the Order Service receives.

Each test is a reproduction of a fault the reference model (tests/model) found, reduced
to plain requests: a product in several entries, units never mixed, idempotent commands,
nothing null sent, and the reads that answer from one snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from devtools.fake_order_service import FakeOrderService
from devtools.harness.service import Service, auth
from devtools.harness.support import wait_for
from ledger.domain.events import order_stream_id

WHEN = {"timestamp": "2026-03-01T10:00:00.000Z", "site": "main"}
DELIVERY = {"siteCode": "main", "delivery": {"deliveryTimeModel": {"deliveryDate": "2030-01-01"}}}
D2 = [
    {"entryId": "e1", "productId": "p1", "totalCount": 3, "orderUnit": "H87"},
    {"entryId": "e2", "productId": "p1", "totalCount": 3, "orderUnit": "H87"},
]
DK = [{"entryId": "e1", "productId": "p1", "totalCount": 2, "orderUnit": "KGM"}]
D1 = [{"entryId": "e1", "productId": "p1", "totalCount": 1, "orderUnit": "H87"}]


def put(svc: Service, entries: list[dict[str, Any]], order_id: str = "o1") -> None:
    r = svc.client.put(
        f"/pick-pack/demo/orders/{order_id}",
        json={"id": order_id, **DELIVERY, "entries": entries},
        headers=auth(),
    )
    assert r.status_code == 200, r.text


def scan(svc: Service, event_id: str, unit: str = "H87", order: str = "o1", **amounts: int) -> None:
    body = {"eventId": event_id, "orderNumber": order, "productId": "p1", "unit": unit}
    r = svc.post_event({**body, **WHEN, **amounts})
    assert r.status_code == 200, r.text


def order(svc: Service, order_id: str = "o1") -> dict[str, Any]:
    r = svc.client.get(f"/pick-pack/demo/orders/{order_id}", headers=auth())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def packlist(svc: Service) -> list[dict[str, Any]]:
    r = svc.client.get(
        "/pick-pack/demo/orders",
        params={"siteCode": "main", "deliveryDate": "2030-01-01"},
        headers=auth(),
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def finish(svc: Service, order_id: str = "o1") -> None:
    r = svc.client.post(f"/pick-pack/demo/orders/{order_id}/finish", headers=auth())
    assert r.status_code == 200, r.text


def counts(entry: dict[str, Any]) -> tuple[int, int, int]:
    return entry["pickedCount"], entry["packedCount"], entry["canceledCount"]


def order_facts(url: str, order_id: str = "o1") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM stored_events WHERE originator_id = %s",
            (order_stream_id("demo", order_id),),
        ).fetchone()
    return int(row[0]) if row else 0


def outbox_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM recalculation_outbox").fetchone()
    return int(row[0]) if row else 0


def test_a_product_in_two_entries_is_split_in_document_order(
    svc: Service, fake: FakeOrderService
) -> None:
    put(svc, D2)
    scan(svc, "s1", packedAmount=3)
    got = order(svc)
    assert [counts(e) for e in got["entries"]] == [(0, 3, 0), (0, 0, 0)]
    assert [e["packedAmountInPc"] for e in got["entries"]] == [3, 0]
    assert got["packingStatus"] == "IN_PROGRESS"  # e2 is untouched
    [item] = packlist(svc)
    assert (item["productsTotal"], item["productsPacked"], item["productsCanceled"]) == (6, 3, 0)
    finish(svc)
    [received] = wait_for(lambda: fake.calculations("o1"))
    sent = received.body
    assert [(e["entryId"], e["deliveredAmount"]) for e in sent["entries"]] == [("e1", 3), ("e2", 0)]
    scan(svc, "s2", packedAmount=2, canceledAmount=1)
    assert [counts(e) for e in order(svc)["entries"]] == [(0, 3, 0), (0, 2, 1)]
    [item] = packlist(svc)
    assert (item["productsPacked"], item["productsCanceled"]) == (5, 1)


def test_units_are_never_added_and_the_rest_is_shown_unreconciled(svc: Service) -> None:
    put(svc, DK)
    scan(svc, "s1", unit="KGM", packedAmount=1)
    scan(svc, "s2", unit="GRM", packedAmount=500)
    got = order(svc)
    assert got["entries"][0]["packedCount"] == 1
    assert got["packingStatus"] == "IN_PROGRESS"  # 1 of 2 KGM
    assert got["unreconciledAmounts"] == [
        {"productId": "p1", "unit": "GRM", "pickedAmount": 0, "packedAmount": 500,
         "canceledAmount": 0}
    ]  # fmt: skip
    scan(svc, "s3", unit="GRM", packedAmount=500)  # now a whole kilogram: it counts
    got = order(svc)
    assert got["entries"][0]["packedCount"] == 2 and "unreconciledAmounts" not in got
    assert got["packingStatus"] == "PRE_PACKED"


def test_finish_twice_sends_once_and_nothing_null(svc: Service, fake: FakeOrderService) -> None:
    put(svc, DK)
    finish(svc)
    [received] = wait_for(lambda: fake.calculations("o1"))
    sent = received.body
    assert sent == {"entries": [{"entryId": "e1", "deliveredAmount": 0, "unit": "KGM"}]}
    finish(svc)
    r = svc.client.patch("/pick-pack/demo/orders/o1", json={"packingStatus": "IN_PROGRESS"},
                         headers=auth())  # fmt: skip
    assert r.status_code == 200
    finish(svc)  # re-opened, nothing scanned: the same totals, nothing queued
    assert outbox_count(svc.runtime.database.url) == 1
    time.sleep(0.3)
    assert len(fake.calculations("o1")) == 1
    assert order(svc)["packingStatus"] == "PACKED"
    scan(svc, "s1", unit="KGM", packedAmount=1)
    finish(svc)  # the totals changed: sent again
    wait_for(lambda: len(fake.calculations("o1")) == 2)


def test_repeated_commands_record_nothing(svc: Service) -> None:
    put(svc, D1)
    url = svc.runtime.database.url
    ann = {"id": "ann", "siteCode": "main", "firstName": "Ann", "lastName": "L"}
    r = svc.client.post("/pick-pack/demo/orders/o1/assignees", params={"force": "true"},
                        json=ann, headers=auth())  # fmt: skip
    assert r.status_code == 200, r.text
    scan(svc, "s1", packedAmount=1)
    assert order(svc)["packingStatus"] == "PRE_PACKED"
    r = svc.client.patch("/pick-pack/demo/orders/o1", json={"packingStatus": "IN_PROGRESS"},
                         headers=auth())  # fmt: skip
    assert r.status_code == 200
    assert order(svc)["packingStatus"] == "IN_PROGRESS"
    packaging = [{"entryId": "box", "packedCount": 1}]
    r = svc.client.put("/pick-pack/demo/orders/o1/packaging", json=packaging, headers=auth())
    assert r.status_code == 200, r.text
    before = order_facts(url)
    for force in ("true", "false"):
        r = svc.client.post("/pick-pack/demo/orders/o1/assignees", params={"force": force},
                            json=ann, headers=auth())  # fmt: skip
        assert r.status_code == 200, r.text
    r = svc.client.patch("/pick-pack/demo/orders/o1", json={"packingStatus": "IN_PROGRESS"},
                         headers=auth())  # fmt: skip
    assert r.status_code == 200
    r = svc.client.put("/pick-pack/demo/orders/o1/packaging", json=packaging, headers=auth())
    assert r.status_code == 200
    assert order_facts(url) == before
    assert order(svc)["packingStatus"] == "IN_PROGRESS"  # the explicit PATCH stands


def test_a_manual_job_on_an_order_known_from_scans_keeps_units_apart(
    svc: Service, fake: FakeOrderService
) -> None:
    scan(svc, "s1", order="o9", packedAmount=2)
    scan(svc, "s2", unit="KGM", order="o9", packedAmount=1)
    r = svc.client.post("/pick-pack/demo/jobs/recalculations",
                        json={"jobType": "MANUAL", "orderIds": ["o9"]}, headers=auth())  # fmt: skip
    assert r.status_code in (200, 201), r.text
    [received] = wait_for(lambda: fake.calculations("o9"))
    sent = received.body
    assert sent == {"entries": [
        {"entryId": "p1", "deliveredAmount": 2, "deliveredAmountInPc": 2, "unit": "H87"},
        {"entryId": "p1", "deliveredAmount": 1, "unit": "KGM"},
    ]}  # fmt: skip


def test_the_feed_converts_a_measure_in_another_unit(svc: Service) -> None:
    measured = [{**DK[0], "unitPricingMeasure": {"value": 500, "unitCode": "GRM"}}]
    put(svc, measured)
    scan(svc, "s1", unit="KGM", packedAmount=1)
    [item] = svc.events().json()
    assert item["packedAmountInPc"] == 2
    assert order(svc)["entries"][0]["packedAmountInPc"] == 2


class CountingConnection:
    """A connection that counts the statements run through it."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.statements = 0

    def execute(self, *args: Any, **kw: Any) -> Any:
        self.statements += 1
        return self._conn.execute(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_an_order_is_read_in_one_statement_one_snapshot(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row and lines in two statements could pair a row with lines a projection commit
    changed in between; one statement reads one snapshot."""
    put(svc, D2)
    scan(svc, "s1", packedAmount=3)
    order(svc)  # caught up
    seen: list[CountingConnection] = []
    original = svc.runtime.views.read

    @contextmanager
    def counting(tenant: str, views: Any) -> Iterator[tuple[CountingConnection, Any]]:
        with original(tenant, views) as (conn, freshness):
            seen.append(CountingConnection(conn))
            yield seen[-1], freshness

    monkeypatch.setattr(svc.runtime.views, "read", counting)
    assert [counts(e) for e in order(svc)["entries"]] == [(0, 3, 0), (0, 0, 0)]
    assert [c.statements for c in seen] == [1]
    seen.clear()
    assert packlist(svc)[0]["productsPacked"] == 3
    assert [c.statements for c in seen] == [1]
