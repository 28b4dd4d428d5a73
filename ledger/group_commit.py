"""Group commit: packing events that arrive together are appended in one transaction.

A single writer thread per process takes the first waiting request, then everything
else already queued (up to `max_batch`), and hands the batch to the event store in
one transaction: one table lock and one fsync for many requests. Each request's
future resolves only after that commit. Under light load a batch is one event and
nothing waits; under heavy load the queue fills while a commit is in flight, so
batches grow exactly when they pay off. If a batch fails as a whole, each of its
events is retried alone, so one bad event cannot fail the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.packing import PackingEvent
from ledger.store import Attribution, EventStore, Outcome

log = logging.getLogger(__name__)


@dataclass
class _Request:
    event: PackingEvent
    attribution: Attribution
    future: Future[Outcome] = field(default_factory=Future)


class GroupCommitter:
    """Owns the writer thread; `submit` is safe to call from any thread."""

    def __init__(self, store: EventStore, max_batch: int = 500) -> None:
        # 500 stays far below the batch size at which the library's pipelined insert
        # path was seen to hang (NOTES-eventsourcing.md #1); we use a single unnest
        # insert anyway, but keep transactions short for lock fairness.
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._started = False
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

    def submit(self, event: PackingEvent, attribution: Attribution) -> Future[Outcome]:
        request = _Request(event, attribution)
        self._queue.put(request)
        return request.future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
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
                return

    def _commit(self, batch: list[_Request]) -> None:
        try:
            try:
                outcomes = self.store.append_packing_events(
                    [(r.event, r.attribution) for r in batch]
                )
            except (OperationalError, InterfaceError) as exc:
                # A pooled connection the database dropped (restart, failover): the pool
                # discards it; one more try runs on a fresh connection.
                log.info("append lost its connection (%s); retrying the batch once", exc)
                outcomes = self.store.append_packing_events(
                    [(r.event, r.attribution) for r in batch]
                )
        except Exception as exc:
            if len(batch) == 1:
                log.warning("append failed: %s", exc)
                batch[0].future.set_exception(exc)
                return
            log.warning("batch of %d failed (%s); retrying each event alone", len(batch), exc)
            for request in batch:
                self._commit([request])
            return
        self.batches += 1
        self.events += len(batch)
        for request, outcome in zip(batch, outcomes, strict=True):
            request.future.set_result(outcome)
