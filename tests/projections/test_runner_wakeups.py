"""Runners learn of new events: their own process's at once, other processes' by NOTIFY.

The group-commit writer wakes its own process's runner after each commit that recorded
events, and sends NOTIFY (for runners in other processes) at most once per interval:
a batch that skips it leaves one owed, sent alone once the interval has passed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bootstrap.runtime import Runtime, start_workers
from devtools.harness.support import packing_event
from ledger.adapters.database import Database
from ledger.adapters.event_store import EventStore
from ledger.adapters.prepared import NOTIFY_CHANNEL
from ledger.config import Settings
from ledger.domain.packing import Attribution, PackingEvent, Verdict
from ledger.services.group_commit import GroupCommitter
from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner


def scan(event_id: str) -> PackingEvent:
    return packing_event(event_id, packed=1)


class Listener:
    """Another process's view of the channel: when each notification arrived."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self.arrivals: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in self.conn.notifies(timeout=0.05, stop_after=1):
                self.arrivals.append(time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.conn.close()


@contextmanager
def writer(db_url: str, interval: float) -> Iterator[tuple[GroupCommitter, Listener]]:
    """A started group committer that notifies at most every `interval`, and a listener."""
    store = EventStore.from_url(db_url, pool_size=1)
    committer = GroupCommitter(store, notify_interval=interval)
    committer.start()
    listener = Listener(db_url)
    try:
        yield committer, listener
    finally:
        committer.stop()
        store.close()
        listener.close()


def test_a_burst_of_batches_is_notified_once_per_interval_and_once_after(db_url: str) -> None:
    interval = 1.0
    with writer(db_url, interval) as (committer, listener):
        started = time.monotonic()
        outcomes = [asyncio.run(committer.append(scan(f"e{i}"), Attribution())) for i in range(20)]
        last_commit = time.monotonic()
        time.sleep(interval + 0.5)
    assert [o.verdict for o in outcomes] == [Verdict.RECORD] * 20
    assert committer.batches == 20, "one event per batch: each awaited before the next"
    burst = last_commit - started
    assert burst < interval, f"the burst took {burst:.2f}s: the test needs it shorter"
    # The first batch's NOTIFY, then the one owed by the other nineteen, sent once the
    # interval had passed, after the last of them had committed.
    assert len(listener.arrivals) == 2, listener.arrivals
    first, owed = listener.arrivals
    assert first - started < interval
    assert owed > last_commit
    assert owed - started >= interval * 0.9


def test_a_batch_after_a_quiet_spell_is_notified_with_its_commit(db_url: str) -> None:
    interval = 0.5
    with writer(db_url, interval) as (committer, listener):
        asyncio.run(committer.append(scan("a"), Attribution()))
        time.sleep(interval * 2)
        sent = time.monotonic()
        asyncio.run(committer.append(scan("b"), Attribution()))
        time.sleep(0.3)
    assert len(listener.arrivals) == 2, listener.arrivals
    assert listener.arrivals[1] - sent < interval / 2, "not held back: nothing owed"


def test_nothing_recorded_wakes_nobody(db_url: str) -> None:
    woken: list[float] = []
    with writer(db_url, 0.1) as (committer, listener):
        committer.on_commit.append(lambda: woken.append(time.monotonic()))
        asyncio.run(committer.append(scan("a"), Attribution()))
        time.sleep(0.3)
        retry = asyncio.run(committer.append(scan("a"), Attribution()))  # a duplicate
        time.sleep(0.3)
    assert retry.verdict is Verdict.DUPLICATE
    assert len(woken) == 1, "woken for the first commit only"
    assert len(listener.arrivals) == 1, "notified of the first commit only"


def test_the_local_runner_is_woken_by_the_writer_without_waiting_for_notify(
    db_url: str,
) -> None:
    """With NOTIFY held back for a minute and polling as slow, only the writer's own
    wake can bring the views up to date within seconds."""
    store = EventStore.from_url(db_url, pool_size=1)
    committer = GroupCommitter(store, notify_interval=60.0)
    runner = ProjectionRunner(db_url, list(PROJECTIONS.values()), poll_interval=60.0)
    committer.on_commit.append(runner.wake.set)
    committer.start()
    runner.start()
    try:
        asyncio.run(committer.append(scan("a"), Attribution()))  # notified: first in a minute
        assert wait_applied(runner, 1, timeout=10.0)
        asyncio.run(committer.append(scan("b"), Attribution()))  # its NOTIFY is owed
        woken_in_time = wait_applied(runner, 2, timeout=5.0)
    finally:
        runner.stop()
        committer.stop()
        store.close()
    assert woken_in_time, "the view waited for a poll or a NOTIFY"


def wait_applied(runner: ProjectionRunner, events: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runner.applied >= events:
            return True
        time.sleep(0.02)
    return False


def test_the_service_wakes_its_runner_from_its_writer(db_url: str, tmp_path: Path) -> None:
    """A service's appends reach its views through the writer's wake, with NOTIFY held
    back and polling slowed: as above, but wired as `serve` wires it."""
    settings = Settings(database_url=db_url, data_dir=tmp_path)
    runtime = Runtime.start(settings, Database(url=db_url), run_workers=False)
    runtime.committer.notify_interval = 60.0
    workers = start_workers(runtime.settings, runtime.database, runtime.committer, runtime.bell)
    try:
        (runner,) = [w for w in workers if isinstance(w, ProjectionRunner)]
        runner.poll_interval = 60.0
        asyncio.run(runtime.committer.append(scan("a"), Attribution()))
        assert wait_applied(runner, 1, timeout=10.0)
        asyncio.run(runtime.committer.append(scan("b"), Attribution()))
        woken_in_time = wait_applied(runner, 2, timeout=5.0)
    finally:
        for worker in reversed(workers):
            worker.stop()
        runtime.stop()
    assert woken_in_time, "the view waited for a poll or a NOTIFY"
