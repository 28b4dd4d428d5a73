"""Group commit: packing events that arrive together are appended in one transaction.

A single writer thread per process takes the first waiting request, then everything
else already queued (up to `max_batch`), and hands the batch to the event store in
one transaction: one table lock and one fsync for many requests. Each request's
future resolves only after that commit; the futures of one batch are settled on the
event loop in one callback, one wake-up per batch rather than one per request. Under
light load a batch is one event and nothing waits; under heavy load the queue fills
while a commit is in flight, so batches grow exactly when they pay off. If a batch
fails as a whole, each of its events is retried alone, so one bad event cannot fail
the others; if it fails because the database is unavailable, it and everything queued
behind it fail at once (503), so an outage is answered fast.

After each commit that recorded events the writer calls `on_commit` (the local
projection runner's wake, a thread's event set). The runners of other processes wake
on NOTIFY, which is sent with a batch at most once per `notify_interval`; a batch
that skipped it leaves one owed, sent alone as soon as the interval has passed with
no batch to carry it. Under load one NOTIFY then serves many batches: each costs the
writer's backend a signal to every listener, and wakes each listening connection and
its thread, on the core the writer needs (measured with bench/cpu.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import DictRow

from ledger.adapters.event_store import EventStore
from ledger.adapters.pool import UNAVAILABLE_ERRORS, database_unavailable, pool_exhausted
from ledger.adapters.prepared import notify_runners
from ledger.domain.packing import Attribution, Outcome, PackingEvent, Verdict
from ledger.thread_names import name_this_thread

log = logging.getLogger(__name__)

# The writer gives its connection back to the pool after this long without work, and
# after holding it this long at most.
IDLE_RELEASE_SECONDS = 1.0
HOLD_SECONDS = 60.0
# At most one NOTIFY per this long; other processes' runners learn of a batch this much
# later at worst (they also poll, twice a second).
NOTIFY_INTERVAL_SECONDS = 0.02


@dataclass
class _Request:
    event: PackingEvent
    attribution: Attribution
    future: asyncio.Future[Outcome]


def _settle(results: list[tuple[asyncio.Future[Outcome], Outcome | BaseException]]) -> None:
    """Runs on the event loop: resolve a batch's futures at once."""
    for future, result in results:
        if future.done():  # the request was cancelled (client went away)
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


class GroupCommitter:
    """Owns the writer thread; `append` is awaited from any event loop."""

    def __init__(
        self,
        store: EventStore,
        max_batch: int = 500,
        notify_interval: float = NOTIFY_INTERVAL_SECONDS,
    ) -> None:
        # 500 stays far below the batch size at which the library's pipelined insert
        # path was seen to hang on large saves; we insert with one
        # statement of our own anyway, but keep transactions short for lock fairness.
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._held: tuple[Any, Connection[DictRow]] | None = None
        self._held_since = 0.0
        self._started = False
        self.notify_interval = notify_interval
        self._notified_at = float("-inf")  # monotonic time of the last NOTIFY sent
        self._notify_owed = False
        # Called on the writer thread after each commit that recorded events.
        self.on_commit: list[Callable[[], None]] = []
        self.batches = 0
        self.events = 0

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._started = False

    async def append(self, event: PackingEvent, attribution: Attribution) -> Outcome:
        """Queue the event and wait until the transaction holding it has committed."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.put(_Request(event, attribution, future))
        return await future

    def _run(self) -> None:
        name_this_thread("group-commit")
        while True:
            first = self._next()
            if first is None:
                self._finish()
                return
            batch = [first]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stopping:
                self._finish()
                return

    def _finish(self) -> None:
        """Stopping: send the NOTIFY still owed, give the connection back."""
        if self._notify_owed:
            self._send_notify()
        self._release()

    def _next(self) -> _Request | None:
        """The next request. While none comes: the NOTIFY owed once its interval has
        passed, and the connection back to the pool after a second."""
        if self._notify_owed:
            due = self._notified_at + self.notify_interval - time.monotonic()
            try:
                return self._queue.get(timeout=max(due, 0.0))
            except queue.Empty:
                self._send_notify()
        try:
            return self._queue.get(timeout=IDLE_RELEASE_SECONDS)
        except queue.Empty:
            self._release()  # idle: the pool may check it, or recycle it
            return self._queue.get()

    def _send_notify(self) -> None:
        self._notify_owed = False
        self._notified_at = time.monotonic()
        try:
            notify_runners(self._connection())
        except Exception as exc:  # the runners poll as well: late, never lost
            log.info("could not notify the projection runners (%s)", exc)
            self._release()

    def _connection(self) -> Connection[DictRow]:
        """The writer's connection: checked out (and checked) once, held while busy.

        A checkout per batch cost a round trip for the pool's check and the pool's own
        bookkeeping, about 40 us of this thread's CPU per batch
        (measured with bench/cpu.py).
        It goes back to the pool after any error (the pool drops it if it is broken),
        after a second without work, and at least once a minute (so the pool's
        max_lifetime still applies).
        """
        if self._held is not None and time.monotonic() - self._held_since > HOLD_SECONDS:
            self._release()
        if self._held is None:
            checkout = self.store.scans.get_connection()
            self._held = (checkout, checkout.__enter__())
            self._held_since = time.monotonic()
        return self._held[1]

    def _release(self) -> None:
        if self._held is not None:
            checkout, _ = self._held
            self._held = None
            with contextlib.suppress(Exception):  # a broken connection is simply dropped
                checkout.__exit__(None, None, None)

    def _append(self, batch: list[_Request]) -> list[Outcome]:
        conn = self._connection()
        now = time.monotonic()
        notify = now - self._notified_at >= self.notify_interval
        try:
            outcomes = self.store.append_packing_events(
                [(r.event, r.attribution) for r in batch], conn, notify
            )
        except BaseException:
            self._release()
            raise
        if any(o.verdict is Verdict.RECORD for o in outcomes):
            if notify:
                self._notified_at, self._notify_owed = now, False
            else:
                self._notify_owed = True
            for hook in self.on_commit:
                try:
                    hook()
                except Exception:  # committed already: a hook must not fail the batch
                    log.exception("on_commit hook failed")
        return outcomes

    def _commit(self, batch: list[_Request]) -> None:
        try:
            try:
                outcomes = self._append(batch)
            except UNAVAILABLE_ERRORS as exc:
                if pool_exhausted(exc):
                    raise  # no connection at all: the database is down, not one connection
                # The connection died while held, or between the pool's check and its use
                # (a restart, a failover): it is dropped; one more try gets a fresh one.
                log.info("append lost its connection (%s); retrying the batch once", exc)
                outcomes = self._append(batch)
        except Exception as exc:
            if database_unavailable(exc):
                # Not this batch's fault: every request waiting behind it would meet the
                # same closed door, one checkout timeout after another. Answer them all
                # now (503); the scanners retry with the same eventId. Nothing was
                # acknowledged, so nothing acknowledged is lost.
                waiting = self._take_waiting()
                failed = len(batch) + len(waiting)
                log.warning("database unavailable (%s); failing %d queued events", exc, failed)
                self._deliver([(r, exc) for r in [*batch, *waiting]])
                return
            if len(batch) == 1:
                log.warning("append failed: %s", exc)
                self._deliver([(batch[0], exc)])
                return
            log.warning("batch of %d failed (%s); retrying each event alone", len(batch), exc)
            for request in batch:
                self._commit([request])
            return
        self.batches += 1
        self.events += len(batch)
        self._deliver(list(zip(batch, outcomes, strict=True)))

    def _take_waiting(self) -> list[_Request]:
        """Everything queued right now (a stop request stays queued)."""
        taken: list[_Request] = []
        stop = False
        while True:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                stop = True
            else:
                taken.append(nxt)
        if stop:
            self._queue.put(None)
        return taken

    @staticmethod
    def _deliver(results: list[tuple[_Request, Outcome | BaseException]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for request, result in results:
            loop = request.future.get_loop()
            by_loop.setdefault(loop, []).append((request.future, result))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, settled)
