"""The event store partitioned by position (migrations 0052-0054,
ledger/adapters/partitions.py; docs/explanation/retention.md).

What must hold, from the rules: every recorded fact stays where it was and positions go on
from the head; "eventId unique per tenant" (a retry is a duplicate, another content a
conflict: docs/explanation/semantics.md) holds across partitions; a stream's versions go on
across partitions; an existing store is converted in place; and the previous release's
service appends across the conversion without one failed scan (expand/contract:
docs/how-to/upgrade.md).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.seed import seed, seed_scan
from devtools.harness.faults import headers, indexed_event_ids
from devtools.harness.fleet import PREVIOUS_RELEASE, extract_release, replica
from devtools.harness.pg import DatabaseFactory
from devtools.harness.service import Service, free_port
from devtools.harness.support import numbered_scan, packing_event, scan_body
from ledger.adapters import partitions
from ledger.adapters.event_store import EventStore
from ledger.adapters.migrate import migrate, shipped_migrations
from ledger.domain.packing import Attribution, Verdict

BEFORE = [m for m in shipped_migrations() if m.version < 52]  # the store as 0.2.0 left it
WHO = Attribution(user="tester")


def _where(url: str) -> dict[int, str]:
    """Each stored event's position and the partition holding it."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT notification_id, tableoid::regclass::text FROM stored_events")
        return dict(rows.fetchall())


def test_a_migrated_store_is_partitioned_with_partitions_ready_ahead(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        assert partitions.is_partitioned(conn)
        parts = partitions.partitions(conn)
        assert parts == partitions.partitions(conn, "packing_events")  # the same bounds
        head = partitions.drawn(conn)
    assert sum(1 for p in parts if p.lower is not None and p.lower > head) >= partitions.AHEAD
    assert partitions.ensure_ahead(db_url) == []  # already ahead: nothing to make


def test_appends_cross_partitions_and_every_rule_holds_across_them(db_url: str) -> None:
    partitions.resize(db_url, 4)
    store = EventStore.from_url(db_url, pool_size=2)
    try:
        outcomes = []
        for i in range(10):  # ten scans of one line (one stream), one batch each
            partitions.ensure_ahead(db_url)
            scan = packing_event(f"e{i}", packed=1)
            outcomes += store.append_packing_events([(scan, WHO)])
        assert [o.verdict for o in outcomes] == [Verdict.RECORD] * 10
        where = _where(db_url)
        assert len(set(where.values())) == 3, where  # 4 + 4 + 2 positions
        # The first scan, sent again from the oldest partition's range: a duplicate
        # answered with its first position; the same eventId with another content: 409.
        again = store.append_packing_events([(packing_event("e0", packed=1), WHO)])
        other = store.append_packing_events([(packing_event("e0", packed=2), WHO)])
        assert again[0].verdict is Verdict.DUPLICATE and again[0].position == outcomes[0].position
        assert other[0].verdict is Verdict.CONFLICT
        with psycopg.connect(db_url) as conn:
            versions = [
                r[0]
                for r in conn.execute(
                    "SELECT originator_version FROM stored_events ORDER BY notification_id"
                )
            ]
        assert versions == list(range(1, 11))  # the stream's versions go on across them
    finally:
        store.close()


def test_an_existing_store_is_converted_in_place(databases: DatabaseFactory) -> None:
    url = databases.empty()
    try:
        migrate(url, BEFORE)
        # 30 scans as the release before recorded them (bench/seed.py writes exactly the
        # rows the service writes; this release's own append needs its migrations).
        seed(url, 30, tenant="demo")
        with psycopg.connect(url) as conn:
            assert not partitions.is_partitioned(conn)
            before = dict(conn.execute("SELECT event_id, position FROM packing_events").fetchall())
        migrate(url)
        with psycopg.connect(url) as conn:
            assert partitions.is_partitioned(conn)
            first = partitions.partitions(conn)[0]
            # The sequence moved to the parent: dropping the first partition keeps it.
            owner = conn.execute(
                "SELECT d.refobjid::regclass::text FROM pg_depend d "
                "WHERE d.objid = 'stored_events_notification_id_seq'::regclass "
                "AND d.deptype = 'a'"
            ).fetchone()
            references = conn.execute(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                "AND confrelid::regclass::text LIKE 'stored_events%'"
            ).fetchone()
        assert first.lower is None and first.name() == "stored_events_p0"
        assert owner == ("stored_events",) and references == (0,)
        assert set(_where(url).values()) == {"stored_events_p0"}  # nothing moved
        store = EventStore.from_url(url, pool_size=2)
        try:
            again = [(seed_scan(i, "demo", 20_000, 5), WHO) for i in range(25, 35)]
            after = store.append_packing_events(again)
        finally:
            store.close()
        assert [o.verdict for o in after[:5]] == [Verdict.DUPLICATE] * 5
        assert [o.position for o in after[:5]] == [before[f"e{i}"] for i in range(25, 30)]
        assert [o.verdict for o in after[5:]] == [Verdict.RECORD] * 5
        assert min(o.position for o in after[5:]) > max(before.values())
    finally:
        databases.drop(url)


def test_the_previous_release_appends_across_the_conversion(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    """Its service keeps answering every scan 200 while this release's migrations
    convert the store under it, and every scan it answered is stored once."""
    try:
        old_tree = extract_release(PREVIOUS_RELEASE, tmp_path / "previous")
    except LookupError as exc:
        pytest.skip(f"{exc}: clone with history (not --depth 1) to run this test")
    url = databases.empty()
    old = replica(url, free_port(), tmp_path / "old", {}, root=old_tree)
    statuses: list[int | str] = []
    posted: list[str] = []
    stop = threading.Event()

    def scanner(n: int) -> None:
        with httpx.Client(base_url=old.url, headers=headers(), timeout=30) as http:
            i = 0
            while not stop.is_set():
                body = scan_body(numbered_scan(i, prefix=f"x{n}-"))
                i += 1
                try:
                    statuses.append(http.post("/pick-pack/demo/events", json=body).status_code)
                except httpx.HTTPError as exc:
                    alive = old.proc is not None and old.proc.poll() is None
                    statuses.append(f"{type(exc).__name__} ({'running' if alive else 'exited'})")
                posted.append(body["eventId"])

    try:
        migrate(url, BEFORE)
        old.start()
        threads = [threading.Thread(target=scanner, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        during = len(statuses)
        migrate(url)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop.set()
        old.stop()
    try:
        assert during > 0 and len(statuses) > during, (during, len(statuses))
        failed = [(n, s) for n, s in enumerate(statuses) if s != 200]
        assert not failed, (during, len(statuses), failed[:3], old.log.read_text()[-2000:])
        with psycopg.connect(url) as conn:
            assert partitions.is_partitioned(conn)
        stored = indexed_event_ids(url)
        assert set(posted) <= set(stored) and max(stored.values()) == 1
        assert len(set(_where(url).values())) >= 1
    finally:
        databases.drop(url)


def test_metrics_report_the_positions_the_partitions_can_still_take(
    service: Service, db_url: str
) -> None:
    for i in range(3):
        assert service.post_event(scan_body(numbered_scan(i))).status_code == 200
    with psycopg.connect(db_url) as conn:
        last = partitions.partitions(conn)[-1].upper - 1
    text = service.client.get("/metrics").text
    line = next(
        row
        for row in text.splitlines()
        if row.startswith("pickpack_event_store_partition_headroom")
    )
    assert float(line.split()[-1]) == last - 3
