"""A batch of packing events: each event is judged alone, and a bad one fails alone."""

from __future__ import annotations

import asyncio
import time

import psycopg

from devtools.harness.support import packing_event
from ledger.adapters.event_store import EventStore
from ledger.domain import orders
from ledger.domain.packing import Attribution, PackingEvent, Verdict
from ledger.services.group_commit import IDLE_RELEASE_SECONDS, GroupCommitter


def scan(event_id: str, order: str = "o1", packed: int = 1) -> PackingEvent:
    return packing_event(event_id, order_id=order, packed=packed)


def recorded_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT event_id FROM packing_events ORDER BY position").fetchall()
    return [r[0] for r in rows]


def test_one_transaction_judges_each_event_and_records_the_good_ones(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        store.append_packing_events([(scan("a"), Attribution())])
        store.run_order_command(
            "demo", "closed", lambda c: orders.register(c.state, {"id": "closed", "entries": []})
        )
        store.run_order_command(
            "demo", "closed", lambda c: orders.change_status(c.state, "CANCELLED", None)
        )
        batch = [
            scan("b"),
            scan("a", packed=5),  # reuses a recorded eventId with other content
            scan("c", order="closed"),  # for a cancelled order
            scan("a"),  # a scanner's retry of a recorded event
            scan("d"),
            scan("d"),  # the same event twice in one batch
            scan("d", packed=2),  # and once more with other content
        ]
        outcomes = store.append_packing_events([(e, Attribution()) for e in batch])
    finally:
        store.close()
    assert [o.verdict for o in outcomes] == [
        Verdict.RECORD,
        Verdict.CONFLICT,
        Verdict.ORDER_CLOSED,
        Verdict.DUPLICATE,
        Verdict.RECORD,
        Verdict.DUPLICATE,
        Verdict.CONFLICT,
    ]
    assert recorded_ids(db_url) == ["a", "b", "d"]
    # A retry is answered with where the original was recorded: before this batch.
    assert outcomes[3].position is not None and outcomes[0].position is not None
    assert outcomes[3].position < outcomes[0].position


def test_concurrent_requests_share_transactions(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=2)
    committer = GroupCommitter(store)
    committer.start()

    async def post_all() -> list[Verdict]:
        results = await asyncio.gather(
            *(committer.append(scan(f"e{i}"), Attribution()) for i in range(200))
        )
        return [r.verdict for r in results]

    try:
        verdicts = asyncio.run(post_all())
    finally:
        committer.stop()
        store.close()
    assert verdicts == [Verdict.RECORD] * 200
    assert len(recorded_ids(db_url)) == 200
    assert committer.batches < 200, "requests that arrive together commit together"


def test_the_writer_survives_the_loss_of_the_connection_it_holds(db_url: str) -> None:
    """The writer keeps its connection between batches; if the server kills it (a
    restart, an admin, a failover), the next scan is still recorded, not refused."""
    store = EventStore.from_url(db_url, pool_size=1)
    committer = GroupCommitter(store)
    committer.start()
    try:
        first = asyncio.run(committer.append(scan("before"), Attribution()))
        with psycopg.connect(db_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'pickpack-writer/%' AND datname = current_database()"
            ).fetchone()
        after = asyncio.run(committer.append(scan("after"), Attribution()))
    finally:
        committer.stop()
        store.close()
    assert killed is not None and killed[0] >= 1, "the writer had a connection to lose"
    assert (first.verdict, after.verdict) == (Verdict.RECORD, Verdict.RECORD)
    assert recorded_ids(db_url) == ["before", "after"]


def test_an_idle_writer_gives_its_connection_back_to_the_pool(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    # The library opens a pool without waiting for its first connection: a checkout
    # before it is ready grows the pool by one more, which may still be connecting when
    # the stats below are read (seen on a fresh clone's CI). Opened and ready first,
    # the pool hands the writer its one connection and grows no other.
    store.scans.pool.open(wait=True, timeout=10)
    committer = GroupCommitter(store)
    committer.start()
    try:
        asyncio.run(committer.append(scan("a"), Attribution()))
        busy = store.scans.pool.get_stats()
        time.sleep(IDLE_RELEASE_SECONDS + 0.5)
        idle = store.scans.pool.get_stats()
    finally:
        committer.stop()
        store.close()
    assert busy.get("pool_available", 0) == busy["pool_size"] - 1  # held right after a batch
    assert idle.get("pool_available", 0) == idle["pool_size"]


def test_a_failed_append_leaves_the_connection_ready_for_the_next(db_url: str) -> None:
    """The append begins and ends its transaction itself: one that fails mid-way (here a
    NUL, which PostgreSQL's text refuses; the API refuses it long before) is rolled
    back, and the same connection records the next batch."""
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        with store.scans.get_connection() as conn:
            try:
                store.append_packing_events([(scan("bad\x00id"), Attribution())], conn)
            except Exception:
                pass
            else:
                raise AssertionError("a NUL in an eventId was stored")
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            outcomes = store.append_packing_events([(scan("good"), Attribution())], conn)
    finally:
        store.close()
    assert [o.verdict for o in outcomes] == [Verdict.RECORD]
    assert recorded_ids(db_url) == ["good"]
