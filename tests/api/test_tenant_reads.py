"""Tenants don't wait for each other: order reads wait for their own tenant's writes.

Over real HTTP against a real PostgreSQL: tenant `beta`'s events pile up unprojected (a
test connection holds both projections' advisory locks, as a busy runner elsewhere
would, so the service's runner applies nothing), while tenant `acme` reads. acme's reads
answer at once and see everything acme wrote; beta's reads wait for beta's own writes
and, when the wait times out, say so (X-Pickpack-Stale) and are counted at /metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from devtools.harness.service import EXAMPLE_EVENT, Service, auth
from projections.base import lock_key
from projections.read import DEFAULT_TIMEOUT, ORDER_VIEWS

DAY = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()


def document(order_id: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "siteCode": "main",
        "delivery": {
            "deliveryTimeModel": {"deliveryDate": DAY},
            "deliveryWindow": {"deliveryTimeTo": f"{DAY}T12:00:00Z"},
        },
        "entries": [
            {"entryId": "e1", "productId": "p1", "totalCount": 50, "orderUnit": "H87"},
        ],
    }


def register(c: httpx.Client, tenant: str, order_id: str) -> None:
    r = c.put(
        f"/pick-pack/{tenant}/orders/{order_id}", json=document(order_id), headers=auth(tenant)
    )
    assert r.status_code == 200, r.text


def scan(c: httpx.Client, tenant: str, order_id: str, event_id: str) -> None:
    body = {**EXAMPLE_EVENT, "eventId": event_id, "orderNumber": order_id, "productId": "p1",
            "pickedAmount": 1, "packedAmount": 1, "canceledAmount": 0}  # fmt: skip
    r = c.post(f"/pick-pack/{tenant}/events", json=body, headers=auth(tenant))
    assert r.status_code == 200, r.text


def get_order(c: httpx.Client, tenant: str, order_id: str) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    r = c.get(f"/pick-pack/{tenant}/orders/{order_id}", headers=auth(tenant))
    return r, time.monotonic() - t0


def packed(r: httpx.Response) -> int:
    assert r.status_code == 200, r.text
    return int(r.json()["entries"][0]["packedCount"])


@contextmanager
def runner_held_back(db_url: str) -> Iterator[None]:
    """Hold both projections' advisory locks: no runner can apply a step meanwhile."""
    with psycopg.connect(db_url) as conn:
        for name in ORDER_VIEWS:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(name),))
        yield
        conn.rollback()


def stale_reads(c: httpx.Client) -> float:
    for line in c.get("/metrics").text.splitlines():
        if line.startswith("pickpack_stale_reads_total "):
            return float(line.split()[1])
    raise AssertionError("pickpack_stale_reads_total is not exposed")


def test_a_tenant_reads_at_once_while_another_tenants_backlog_is_held_back(
    service: Service, db_url: str
) -> None:
    c = service.client
    register(c, "acme", "a1")
    for i in range(3):
        scan(c, "acme", "a1", f"acme-{i}")
    register(c, "beta", "b1")
    assert packed(get_order(c, "acme", "a1")[0]) == 3
    assert packed(get_order(c, "beta", "b1")[0]) == 0
    before = stale_reads(c)

    with runner_held_back(db_url):
        # beta writes after acme: a backlog the views cannot apply while held back.
        for i in range(20):
            scan(c, "beta", "b1", f"beta-{i}")
        register(c, "beta", "b2")

        for _ in range(5):
            r, seconds = get_order(c, "acme", "a1")
            assert packed(r) == 3  # acme sees every write of its own
            assert "X-Pickpack-Stale" not in r.headers
            assert seconds < DEFAULT_TIMEOUT / 4, seconds
        for path, params in (
            ("/pick-pack/acme/orders", {"siteCode": "main", "deliveryDate": DAY}),
            ("/pick-pack/acme/orderCycles", {"siteCode": "main"}),
        ):
            t0 = time.monotonic()
            r = c.get(path, params=params, headers=auth("acme"))
            assert r.status_code == 200 and "X-Pickpack-Stale" not in r.headers
            assert time.monotonic() - t0 < DEFAULT_TIMEOUT / 4
        assert stale_reads(c) == before

        # beta's own read waits for beta's writes, gives up at the timeout, and says so.
        r, seconds = get_order(c, "beta", "b1")
        assert seconds >= DEFAULT_TIMEOUT
        assert packed(r) == 0  # the view as it is: beta's scans are not in it yet
        behind = float(r.headers["X-Pickpack-Stale"])
        assert DEFAULT_TIMEOUT <= behind < 60, behind  # the oldest unapplied scan's age
        assert get_order(c, "beta", "b2")[0].status_code == 404
        assert stale_reads(c) == before + 2

    r, _ = get_order(c, "beta", "b1")
    assert packed(r) == 20 and "X-Pickpack-Stale" not in r.headers
    assert get_order(c, "beta", "b2")[0].status_code == 200


def test_a_read_waits_for_its_own_tenants_write_until_the_views_apply_it(
    service: Service, db_url: str
) -> None:
    c = service.client
    register(c, "beta", "b1")
    assert packed(get_order(c, "beta", "b1")[0]) == 0
    answer: dict[str, Any] = {}
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with runner_held_back(db_url):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        scan(c, "beta", "b1", "beta-1")  # acknowledged, not yet projected

        with httpx.Client(base_url=service.url, timeout=30) as other:

            def read() -> None:
                answer["response"], answer["seconds"] = get_order(other, "beta", "b1")

            reader = threading.Thread(target=read)
            reader.start()
            time.sleep(DEFAULT_TIMEOUT / 4)
            assert reader.is_alive()  # still waiting for beta's scan
            release.set()
            reader.join(10)
    finally:
        release.set()
        holder.join(10)
    r, seconds = answer["response"], answer["seconds"]
    assert packed(r) == 1 and "X-Pickpack-Stale" not in r.headers
    assert DEFAULT_TIMEOUT / 4 <= seconds < DEFAULT_TIMEOUT, seconds
