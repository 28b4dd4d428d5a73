"""Keeps projections up to date with the event store, across crashes and processes.

Each step is one transaction: take each projection's advisory transaction lock (so only
one runner applies a batch to it at a time, in any number of processes, and a rebuild's
swap can exclude runners), read the tracked positions, fold the next batch of stored
events into the views, record the new positions. Views and positions commit together,
so a killed worker resumes exactly where its last commit left it. One runner may keep
several projections: each new event is then read and decoded once for all of them.

The runner wakes on the store's NOTIFY (LISTEN on its own connection) and also polls,
because the library's LISTEN-only subscription stalls silently when that connection
dies. A dead LISTEN connection is reopened with backoff;
meanwhile polling keeps the view moving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from ledger.adapters import connection
from ledger.adapters.database import for_role
from ledger.adapters.prepared import NOTIFY_CHANNEL
from ledger.thread_names import name_this_thread
from projections.base import Accumulator, Projection, decode_rows, lock_key

log = logging.getLogger(__name__)

SELECT_BATCH = (
    "SELECT notification_id, topic, state FROM stored_events "
    "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
)
# A LISTEN connection that heard nothing this long checks that its server still answers.
LISTEN_PING_SECONDS = 2.0
# How long the LISTEN thread waits for a notification before it looks at its stop flag
# again: the bound on `stop` (a process's shutdown, every test's teardown). At 0.5 s a
# stop waited 0.3 s on average; ten idle wake-ups a second cost nothing measurable.
LISTEN_WAKE_SECONDS = 0.1
UPSERT_POSITION = (
    "INSERT INTO notification_tracking (application_name, notification_id) VALUES (%s, %s) "
    "ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id"
)


@dataclass
class Kept:
    """An accumulator kept between a runner's steps, and what its states are as of.

    Its in-memory states equal the view's rows only while nobody else has written the
    view: no other runner (the tracked position is still the one this runner
    committed), no rebuild swapped a new table in (the tables' OIDs are unchanged) and
    no tenant's rebuild rewrote rows in place (the projection's generation, kept last in
    `tables`, is unchanged).
    """

    accumulator: Accumulator
    tables: tuple[int, ...]
    position: int


# A kept accumulator holding more rows' states than this is dropped after its step: a
# live runner keeps the orders being packed now (hundreds), not a day's worth.
KEEP_AT_MOST = 10_000


def step(
    conn: psycopg.Connection,
    projections: Projection | Sequence[Projection],
    batch_size: int,
    kept: dict[str, Kept] | None = None,
) -> int | None:
    """Apply one batch to each projection this runner can lock, in one transaction.

    Returns the number of events read, or None if other runners hold every projection.
    Each projection has its own lock and position: one that is ahead (say, just
    rebuilt) skips the events it already has. The events are read and decoded once
    for all of them.

    With `kept` (the runner's own, empty at first), accumulators outlive the step, so
    the next step need not load the order states it folds into again (about a sixth of
    a step's CPU, measured with bench/rebuild.py); one whose view was written by anyone else in
    between is dropped (`Kept`), and any failure drops them all.
    """
    try:
        return _step(conn, projections, batch_size, kept)
    except BaseException:
        if kept is not None:
            kept.clear()  # what was folded may not have committed
        raise


def _step(
    conn: psycopg.Connection,
    projections: Projection | Sequence[Projection],
    batch_size: int,
    kept: dict[str, Kept] | None,
) -> int | None:
    group = [projections] if not isinstance(projections, Sequence) else list(projections)
    folded: dict[str, tuple[Accumulator, tuple[int, ...], int]] = {}
    with conn.transaction():
        # Views are derived and their position commits with them: if a crash loses the
        # last commits, both are lost together and are simply applied again. So these
        # commits need not wait for the WAL flush. Every read a step makes is by key (or
        # by position range): a plan that scanned a view chosen while it was small would
        # be kept by the prepared statement as it grew, so no scan is planned.
        conn.execute("SET LOCAL synchronous_commit = off; SET LOCAL enable_seqscan = off")
        locked = conn.execute(
            "SELECT pg_try_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k",
            ([lock_key(p.name) for p in group],),
        ).fetchall()
        active = [p for p, (got,) in zip(group, locked, strict=True) if got]
        if not active:
            return None
        tracked: dict[str, int] = dict(
            conn.execute(
                "SELECT application_name, notification_id FROM notification_tracking "
                "WHERE application_name = ANY(%s)",
                ([p.name for p in active],),
            ).fetchall()
        )
        positions = {p.name: int(tracked.get(p.name) or 0) for p in active}
        with conn.cursor(binary=True) as curs:
            rows = curs.execute(SELECT_BATCH, (min(positions.values()), batch_size)).fetchall()
        if not rows:
            return 0
        events = decode_rows(rows)
        last = events[-1].position
        tables = _table_oids(conn, active) if kept is not None else {}
        with conn.cursor() as curs:
            for p in active:
                mine = [e for e in events if e.position > positions[p.name]]
                if mine:
                    acc = _accumulator(p, kept, tables, positions[p.name])
                    acc.fold(curs, mine)
                    acc.flush(curs)
                    folded[p.name] = (acc, tables.get(p.name, ()), max(last, positions[p.name]))
        conn.execute(
            "INSERT INTO notification_tracking (application_name, notification_id) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) "
            "ON CONFLICT (application_name) DO UPDATE "
            "SET notification_id = greatest(notification_tracking.notification_id, "
            "excluded.notification_id)",
            ([p.name for p in active], [max(last, positions[p.name]) for p in active]),
        )
    # committed: the folded states are the views' rows now
    if kept is not None:
        for name, (acc, oids, position) in folded.items():
            if acc.held() <= KEEP_AT_MOST:
                kept[name] = Kept(acc, oids, position)
            else:
                kept.pop(name, None)
    return len(events)


def _table_oids(
    conn: psycopg.Connection, projections: list[Projection]
) -> dict[str, tuple[int, ...]]:
    """Each projection's tables as they are now (a rebuild's swap gives new OIDs), and
    last its generation (a tenant's rebuild rewrites rows in place and raises it:
    migrations/0051_projection_generations.sql)."""
    names = [t for p in projections for t in p.tables]
    rows = conn.execute(
        "SELECT to_regclass(t)::oid FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i",
        (names,),
    ).fetchall()
    generations: dict[str, int] = dict(
        conn.execute(
            "SELECT projection, generation FROM projection_generations WHERE projection = ANY(%s)",
            ([p.name for p in projections],),
        ).fetchall()
    )
    oids = iter(int(r[0]) for r in rows)
    return {
        p.name: (*(next(oids) for _ in p.tables), int(generations.get(p.name, 0)))
        for p in projections
    }


def _accumulator(
    p: Projection, kept: dict[str, Kept] | None, tables: dict[str, tuple[int, ...]], position: int
) -> Accumulator:
    """The runner's kept accumulator for `p` if the view is still as it left it."""
    if kept is not None:
        entry = kept.pop(p.name, None)
        if entry is not None and entry.tables == tables[p.name] and entry.position == position:
            return entry.accumulator
    return p.accumulator()


class ProjectionRunner:
    """A background thread that keeps one or more projections caught up with the store."""

    def __init__(
        self,
        url: str,
        projection: Projection | Sequence[Projection],
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        coalesce: float = 0.005,
        max_coalesce: float = 0.1,
        full_step: int = 500,
        max_failure_backoff: float = 30.0,
    ) -> None:
        self.url = url
        self.projections = (
            [projection] if not isinstance(projection, Sequence) else list(projection)
        )
        self.name = "+".join(p.name for p in self.projections)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.coalesce = coalesce
        self.max_coalesce = max_coalesce
        self.full_step = full_step
        self.max_failure_backoff = max_failure_backoff
        self.failures = 0  # steps that failed with an unexpected error
        self.wake = threading.Event()
        # Called on the LISTEN thread for each notification (the change feed's waiters).
        self.on_notify: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"projection-{self.name}", daemon=True),
            threading.Thread(target=self._listen, name=f"listen-{self.name}", daemon=True),
        ]
        self.applied = 0
        self._kept: dict[str, Kept] = {}  # the projection thread's own (see `step`)

    def start(self) -> ProjectionRunner:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        for t in self._threads:
            t.join(timeout=5)

    def _run(self) -> None:
        name_this_thread("projections")
        conn: psycopg.Connection | None = None
        backoff = 0.1
        first_slow = min(1.0, self.max_failure_backoff)
        slow = first_slow  # the wait after an unexpected error, doubling to the maximum
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connection.connect(for_role(self.url, "projections"), autocommit=True)
                self.wake.clear()
                applied = step(conn, self.projections, self.batch_size, self._kept)
                backoff, slow = 0.1, first_slow
                if applied:
                    self.applied += applied
                    if applied < self.batch_size:
                        self._stop.wait(self.pause_after(applied))
                    continue  # more may be waiting
                # Caught up (or another process is the active runner): wait for news.
                self.wake.wait(self.poll_interval)
            except psycopg.Error as exc:
                log.warning("projection %s: %s; retrying in %.1fs", self.name, exc, backoff)
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)
            except Exception:
                # A bug or an event the views cannot take. The step rolled back, so
                # nothing was half-applied; the thread must not die with it (the views
                # would silently stop while every read waits for them). Retry slowly,
                # loudly: the lag shows in /metrics and the error in the log.
                self.failures += 1
                log.exception("projection %s: step failed; retrying in %.0fs", self.name, slow)
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(slow)
                slow = min(slow * 2, self.max_failure_backoff)
        if conn is not None:
            conn.close()

    def pause_after(self, applied: int) -> float:
        """How long to wait after a step that applied `applied` events (fewer than a batch).

        Waiting lets the next step fold several commits at once: each step has a fixed
        cost (a transaction, its locks, the tracking rows) and touches each order and
        line once however many events it folds. The wait grows with the step's size, so
        it grows with the ingest rate: a trickle waits `coalesce` (views a few
        milliseconds behind), heavy ingest up to `max_coalesce`, when saving CPU for the
        writers matters most. Against the fixed wait this replaces (25 ms once a step
        found 10 events, which locked in at 500 events/s already): ingest +10% on one
        core, lag p99 at 500 events/s 11 ms (was 30), at 2,900 events/s 73 ms (was 55),
        at saturation 171 ms (was 62) (bench/lag.py, two cores).
        """
        return min(self.max_coalesce, self.coalesce + self.max_coalesce * applied / self.full_step)

    def _listen(self) -> None:
        name_this_thread("listen")
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with connection.connect(for_role(self.url, "listen"), autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.1
                    self.wake.set()  # we may have missed news while reconnecting
                    for hook in self.on_notify:
                        hook()
                    quiet_since = time.monotonic()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_WAKE_SECONDS, stop_after=1):
                            quiet_since = time.monotonic()
                            self.wake.set()
                            for hook in self.on_notify:
                                hook()
                        if time.monotonic() - quiet_since >= LISTEN_PING_SECONDS:
                            # Silence may mean a frozen or partitioned server: a listener
                            # only reads, so nothing else would ever notice. One bounded
                            # round trip tells; a failed one reconnects (to the new
                            # primary, after a failover).
                            conn.execute("")
                            quiet_since = time.monotonic()
            except psycopg.Error as exc:
                log.info(
                    "projection %s: LISTEN lost (%s); polling until it returns", self.name, exc
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)
