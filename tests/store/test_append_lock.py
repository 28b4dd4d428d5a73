"""Appends are serialized by the append lock, which table maintenance never waits on.

Every writer takes `sql.SERIALIZE_APPENDS` (an advisory transaction lock, then ROW
EXCLUSIVE on stored_events) instead of LOCK TABLE ... EXCLUSIVE, which conflicts with
the SHARE UPDATE EXCLUSIVE lock of VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY and
autovacuum. These tests hold that lock in another session and append (a scan, an order
command, the library's own insert); follow positions as the projection runner does while
writers in several processes append, and check that nothing is passed over; and run an
old-style writer (a process from before the change, still taking EXCLUSIVE) beside new
ones, as during a rolling upgrade.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

from devtools.harness.support import packing_event, wait_until
from ledger.adapters import sql
from ledger.adapters.event_store import EventStore
from ledger.adapters.prepared import READ_FOR_DECISION
from ledger.domain import orders
from ledger.domain.events import LedgerEvent, OrderRegistered, order_stream_id
from ledger.domain.packing import Attribution, Verdict

# Long enough for a stalled append to show, far below the pool's 10 s lock timeout.
PATIENCE_SECONDS = 5.0


@contextmanager
def held(url: str, statement: str) -> Iterator[psycopg.Connection[Any]]:
    """A session holding `statement`'s locks in an open transaction until the block exits."""
    with psycopg.connect(url) as conn:  # not autocommit: the transaction stays open
        conn.execute(statement)
        try:
            yield conn
        finally:
            conn.rollback()


def finishes(work: Callable[[], Any], within: float = PATIENCE_SECONDS) -> tuple[bool, Any]:
    """Run `work` in a thread; (whether it finished within `within` s, its result)."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as e:  # reported to the test below
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    done = not thread.is_alive()
    if errors:
        raise errors[0]
    return done, result[0] if result else None


def old_style(store: EventStore) -> EventStore:
    """`store` locking as every process did before the append lock: EXCLUSIVE on the table."""
    store._begin_lock_and_read = (
        f"BEGIN; SET LOCAL lock_timeout = '{store.datastore.lock_timeout}s'; "
        "SET LOCAL enable_seqscan = off; LOCK TABLE stored_events IN EXCLUSIVE MODE; "
        f"EXECUTE {READ_FOR_DECISION}("
    ).encode()
    library = PostgresApplicationRecorder(store.datastore)
    store.recorder.lock_table_statements = library.lock_table_statements
    return store


def register(store: EventStore, order_id: str) -> list[int]:
    return store.run_order_command(
        "demo", order_id, lambda c: orders.register(c.state, {"id": order_id, "entries": []})
    )


# -- maintenance never stalls an append ----------------------------------------------------


def test_appends_complete_while_maintenance_holds_share_update_exclusive(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        register(store, "o-warm")  # prepared statements and connections made beforehand
        store.append_packing_events([(packing_event("warm"), Attribution())])
        # What VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY and autovacuum hold.
        with held(db_url, "LOCK TABLE stored_events IN SHARE UPDATE EXCLUSIVE MODE"):
            began = time.monotonic()
            scan_done, outcomes = finishes(
                lambda: store.append_packing_events([(packing_event("during"), Attribution())])
            )
            command_done, ids = finishes(lambda: register(store, "o-during"))
            library_done, library_ids = finishes(
                lambda: store.recorder.insert_events(
                    [store.mapper.to_stored_event(e) for e in _library_events("o-library")]
                )
            )
            took = time.monotonic() - began
    finally:
        store.close()
    assert scan_done, "a scan's append waited on the maintenance lock"
    assert command_done, "an order command waited on the maintenance lock"
    assert library_done, "the library's own insert waited on the maintenance lock"
    assert [o.verdict for o in outcomes] == [Verdict.RECORD]
    assert len(ids) == 1 and len(library_ids) == 1
    assert took < PATIENCE_SECONDS


def _library_events(order_id: str) -> list[LedgerEvent]:
    stream = order_stream_id("demo", order_id)
    event = OrderRegistered(
        originator_id=stream,
        originator_version=1,
        timestamp=OrderRegistered.create_timestamp(),
        tenant="demo",
        order_id=order_id,
        document={"id": order_id, "entries": []},
    )
    return [event]


def test_appends_wait_for_each_other_on_the_append_lock(db_url: str) -> None:
    """The lock that replaced EXCLUSIVE still serializes writers: one at a time."""
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        store.append_packing_events([(packing_event("warm"), Attribution())])
        with held(db_url, sql.SERIALIZE_APPENDS) as holder:
            waited, _ = finishes(
                lambda: store.append_packing_events([(packing_event("a"), Attribution())]),
                within=1.0,
            )
            assert not waited, "an append went through while another writer held the lock"
            holder.rollback()  # the append proceeds once the holder's transaction ends
        wait_until(lambda: _count(db_url) == 2, PATIENCE_SECONDS)
    finally:
        store.close()


# -- gap safety: a reader following positions never passes over a late commit ---------------


WRITERS = 4
ROUNDS = 120


def _writer(url: str, n: int, start: Any) -> None:
    """Append scans (batches of 1-3), order commands and library inserts, interleaved."""
    store = EventStore.from_url(url, pool_size=1)
    try:
        start.wait()
        for i in range(ROUNDS):
            if i % 4 == 3:
                register(store, f"w{n}-o{i}")
            else:
                batch = [
                    (packing_event(f"w{n}-{i}-{k}", order_id=f"w{n}-o{i % 7}"), Attribution())
                    for k in range(1 + i % 3)
                ]
                outcomes = store.append_packing_events(batch)
                assert all(o.verdict is Verdict.RECORD for o in outcomes)
    finally:
        store.close()


def follow(url: str, running: Callable[[], bool]) -> list[int]:
    """Positions in the order a tailing reader (the projection runner) first sees them."""
    seen: list[int] = []
    last = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            alive = running()
            rows = conn.execute(
                "SELECT notification_id FROM stored_events WHERE notification_id > %s "
                "ORDER BY notification_id LIMIT 1000",
                (last,),
            ).fetchall()
            seen.extend(r[0] for r in rows)
            if rows:
                last = rows[-1][0]
            elif not alive:
                return seen


def test_a_reader_following_positions_never_skips_an_event_under_concurrent_processes(
    db_url: str,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(db_url, n, start)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    start.set()
    seen = follow(db_url, lambda: any(p.is_alive() for p in procs))
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    stored = _positions(db_url)
    # 3 of every 4 rounds append 1-3 scans, the 4th registers an order: all were stored.
    assert len(stored) == WRITERS * sum(1 + i % 3 if i % 4 != 3 else 1 for i in range(ROUNDS))
    assert seen == stored, "the reader passed over an event that committed after a later one"


# -- a rolling upgrade: old writers (EXCLUSIVE) beside new ones ---------------------------------


def test_an_old_style_append_and_a_new_one_exclude_each_other(db_url: str) -> None:
    new = EventStore.from_url(db_url, pool_size=1)
    old = old_style(EventStore.from_url(db_url, pool_size=1))
    try:
        for store, name in ((new, "warm-new"), (old, "warm-old")):
            store.append_packing_events([(packing_event(name), Attribution())])
        # An old process's transaction holds EXCLUSIVE: a new writer waits for it.
        with held(db_url, "LOCK TABLE stored_events IN EXCLUSIVE MODE") as holder:
            done, _ = finishes(
                lambda: new.append_packing_events([(packing_event("n1"), Attribution())]),
                within=1.0,
            )
            assert not done, "a new writer appended while an old one held EXCLUSIVE"
            holder.rollback()
        # A new writer's transaction holds the append lock: an old writer waits for it.
        with held(db_url, sql.SERIALIZE_APPENDS) as holder:
            done, _ = finishes(
                lambda: old.append_packing_events([(packing_event("o1"), Attribution())]),
                within=1.0,
            )
            assert not done, "an old writer appended while a new one held the append lock"
            done, _ = finishes(lambda: register(old, "o-old"), within=1.0)
            assert not done, "an old order command ran while a new writer held the lock"
            holder.rollback()
        wait_until(lambda: _count(db_url) == 5, PATIENCE_SECONDS)
    finally:
        new.close()
        old.close()


def test_old_and_new_writers_interleaved_record_each_event_once_in_commit_order(
    db_url: str,
) -> None:
    """Both kinds post the same eventIds at once: one record each, none passed over."""
    stores = [EventStore.from_url(db_url, pool_size=1) for _ in range(2)]
    stores += [old_style(EventStore.from_url(db_url, pool_size=1)) for _ in range(2)]
    verdicts: list[Verdict] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    go = threading.Barrier(len(stores))

    def write(store: EventStore, n: int) -> None:
        try:
            go.wait()
            for i in range(80):
                if i % 5 == 4:
                    register(store, f"s{n}-o{i}")
                    continue
                # every store posts the same ids: each must be recorded exactly once
                batch = [(packing_event(f"e{i}-{k}"), Attribution()) for k in range(2)]
                outcomes = store.append_packing_events(batch)
                with lock:
                    verdicts.extend(o.verdict for o in outcomes)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    try:
        seen = follow(db_url, lambda: any(t.is_alive() for t in threads))
        for t in threads:
            t.join(60)
    finally:
        for s in stores:
            s.close()
    assert not errors, errors  # no unique violation: every decision saw the earlier appends
    scans = 80 // 5 * 4 * 2
    assert verdicts.count(Verdict.RECORD) == scans
    assert verdicts.count(Verdict.DUPLICATE) == scans * (len(stores) - 1)
    with psycopg.connect(db_url) as conn:
        ids = conn.execute("SELECT event_id FROM packing_events").fetchall()
    assert len(ids) == len(set(ids)) == scans
    assert seen == _positions(db_url), "the reader passed over an event that committed late"


# -- helpers -----------------------------------------------------------------------------------


def _positions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT notification_id FROM stored_events ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def _count(url: str) -> int:
    return len(_positions(url))
