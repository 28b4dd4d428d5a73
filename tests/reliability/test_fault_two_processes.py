"""Two `pickpack serve` processes on one database under concurrent load.

No duplicate, no lost event, one active runner per projection at a time, and each
recalculation request delivered to the Order Service exactly once per attempt, though
both processes run a projection runner and an outbox dispatcher.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.fake_order_service import FakeOrderService
from devtools.harness import fold
from devtools.harness.faults import (
    LockWatcher,
    ScanReport,
    ServeProcess,
    headers,
    indexed_event_ids,
    make_events,
    order_document,
    outbox,
    scan,
    stored_packing_events,
    wait_caught_up,
)
from devtools.harness.service import free_port
from devtools.harness.support import FAST_RECALCULATION as FAST
from devtools.harness.support import scan_of_body, view_totals
from ledger.adapters.migrate import MIGRATION_LOCK_KEY
from ledger.adapters.sql import APPEND_LOCK_KEY
from projections.base import lock_key
from projections.registry import PROJECTIONS

ORDERS = 20
FAILURES = 6  # calculations calls the Order Service refuses with 503 first: retried


@pytest.fixture
def fake() -> Iterator[FakeOrderService]:
    f = FakeOrderService().start()
    yield f
    f.stop()


def test_two_processes_on_one_database_record_each_event_once_and_deliver_each_attempt_once(
    db_url: str, tmp_path: Path, fake: FakeOrderService
) -> None:
    env = {**FAST, "PICKPACK_ORDER_SERVICE_URL": fake.url}
    a = ServeProcess(db_url, free_port(), tmp_path / "a", env)
    b = ServeProcess(db_url, free_port(), tmp_path / "b", env)
    starting = [threading.Thread(target=s.start) for s in (a, b)]  # both migrate at once
    for t in starting:
        t.start()
    for t in starting:
        t.join(timeout=90)
    try:
        with httpx.Client(timeout=30) as http:
            for i in range(ORDERS):
                server = (a, b)[i % 2]
                r = http.put(
                    f"{server.url}/pick-pack/demo/orders/o{i}",
                    json=order_document(f"o{i}"),
                    headers=headers(),
                )
                assert r.status_code == 200, r.text

        distinct = make_events(800, prefix="d-", orders=ORDERS)
        twice = make_events(200, prefix="t-", orders=ORDERS)  # sent to both at the same time

        def load() -> list[ScanReport]:
            """Spread events over both; meanwhile send each of `twice` to both at once."""
            runs = [
                (distinct, [a.url, b.url], 12),
                (twice, [a.url], 4),
                (twice, [b.url], 4),
            ]
            reports = [ScanReport() for _ in runs]
            threads = [
                threading.Thread(target=scan, args=(bodies, urls, n, r))
                for (bodies, urls, n), r in zip(runs, reports, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return reports

        with LockWatcher(db_url) as locks:
            started = time.monotonic()
            spread, twice_a, twice_b = load()
            took = time.monotonic() - started
            caught_up = wait_caught_up(db_url)

        fake.fail(times=FAILURES, status=503)

        finish_seconds: list[float] = []

        def finish(i: int) -> int:
            server = (a, b)[i % 2]
            started = time.monotonic()
            r = httpx.post(
                f"{server.url}/pick-pack/demo/orders/o{i}/finish", headers=headers(), timeout=30
            )
            finish_seconds.append(time.monotonic() - started)
            return r.status_code

        finishes: list[int] = []
        finishing = [
            threading.Thread(target=lambda i=i: finishes.append(finish(i))) for i in range(ORDERS)
        ]
        for t in finishing:
            t.start()
        for t in finishing:
            t.join(timeout=30)
        assert finishes == [200] * ORDERS
        deadline = time.monotonic() + 30
        while not (rows := outbox(db_url)) or any(s != "SUCCESS" for _, s, _ in rows):
            assert time.monotonic() < deadline, f"recalculations not delivered: {rows}"
            time.sleep(0.05)
    finally:
        for s in (a, b):
            s.stop()

    sent = distinct + twice
    stored = stored_packing_events(db_url)
    per_id = Counter(e.event_id for e in stored)
    projection_keys = {lock_key(name) for name in PROJECTIONS}
    runner_pids = set().union(*(locks.holders.get(k, set()) for k in projection_keys))
    delivered = Counter(r.order_id for r in fake.calculations())
    attempts: Counter[str] = Counter()
    for order_id, _, n in rows:
        attempts[order_id] += n
    print(
        f"\ntwo processes: {len(distinct)} events spread over both, {len(twice)} sent to both "
        f"at once; {spread.retries + twice_a.retries + twice_b.retries} retries; ingest "
        f"{took:.1f}s; stored {len(stored)}; projections caught up in {caught_up:.2f}s; "
        f"pg_locks sampled {locks.samples} times, projection locks held by "
        f"{len(runner_pids)} backends over time, at most "
        f"{max((locks.most_at_once[k] for k in projection_keys), default=0)} at once; "
        f"{len(rows)} finishes (slowest {max(finish_seconds):.2f}s), "
        f"{sum(attempts.values())} attempts "
        f"({FAILURES} refused with 503), {sum(delivered.values())} requests received"
    )
    # Every event answered 200 (the second of a pair as a duplicate), stored exactly once.
    assert spread.ok == {e["eventId"] for e in distinct}
    assert twice_a.ok == twice_b.ok == {e["eventId"] for e in twice}
    assert max(per_id.values()) == 1, "an event was stored twice"
    assert set(per_id) == {e["eventId"] for e in sent}, "an acknowledged event was lost"
    assert indexed_event_ids(db_url) == Counter(e["eventId"] for e in sent)
    # One active runner per projection: both processes' runners contend for the same
    # lock keys (they took turns), never two at once, and nothing was applied twice.
    assert locks.samples > 50
    seen_keys = set(locks.holders) - {MIGRATION_LOCK_KEY, APPEND_LOCK_KEY}
    assert seen_keys == projection_keys, "both processes must lock the same projection keys"
    assert all(locks.most_at_once[k] == 1 for k in projection_keys)
    # Both processes' writers serialize on the one append lock, never two at once.
    assert locks.most_at_once[APPEND_LOCK_KEY] <= 1
    assert view_totals(db_url, "demo") == fold.line_totals(stored)
    assert view_totals(db_url, "demo") == fold.line_totals(
        fold.accepted(scan_of_body(e) for e in sent)
    )
    # Each recalculation attempt reached the Order Service exactly once.
    assert len(rows) == ORDERS
    assert sum(attempts.values()) == ORDERS + FAILURES
    assert delivered == attempts
