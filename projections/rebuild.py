"""Blue/green rebuild: replay the store into fresh tables, then swap them in at once.

The fresh tables (`<table>__rebuild`, created LIKE the live ones) fill while the live
service keeps serving from the old ones. Progress (the position reached) commits with
each chunk, so a killed rebuild resumes. When the replay reaches the store's head, one
transaction takes the projection's advisory lock (pausing its live runner), applies the
last few events, renames the tables, and sets the tracked position: readers see the old
view or the new one, never a half-built one.

Once facts are archived (`pickpack archive`), the fresh tables start as a copy of the
views' baseline (projections/baseline.py: the archived facts folded at the archive
point) and the replay goes on from the baseline's position; by slices too, where the
rows do not fit, each slice merging into its orders' baseline rows
(projections/rebuild_slices.py). A store whose archive has no baseline is refused
(baseline.BaselineMissing), naming the first retained position.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ledger.adapters.archive_store import retention
from ledger.domain.retention import archived_after
from projections import baseline, rebuild_slices
from projections.base import Accumulator, Projection, lock_key
from projections.fresh_tables import create_like, swap_in
from projections.replaying import MAX_ROWS, decode, no_cyclic_gc, read_chunk
from projections.runner import UPSERT_POSITION

SUFFIX = "__rebuild"


class RebuildBusy(RuntimeError):
    """Another process is rebuilding one of the projections asked for."""


class RebuildOutrun(RuntimeError):
    """An archive took facts out of the store that the rebuild had still to read."""


def _first_retained(conn: psycopg.Connection) -> int:
    """The first position the store still holds (0: nothing archived)."""
    return retention(conn)[1]


def _outrun(conn: psycopg.Connection, started_from: int) -> RebuildOutrun | None:
    """Tables that started from `started_from` (0: empty; else the baseline's position)
    hold every fact only while no fact after it is archived: an archive recorded since
    may have dropped facts before this rebuild read them."""
    retained = retention(conn)
    if archived_after(retained, started_from) is None:
        return None
    first = retained[1]
    return RebuildOutrun(
        f"facts before position {first} were archived while this rebuild ran from "
        f"position {started_from}; run the rebuild again: it starts from the new baseline"
    )


def rebuild_lock_key(name: str) -> int:
    """The session advisory lock a rebuild of `name` holds for its whole run.

    Distinct from the projection's own lock (lock_key), which its live runner takes for
    every step: the rebuild takes that one only for the swap.
    """
    return lock_key(f"rebuild:{name}")


def _claim(conn: psycopg.Connection, projections: list[Projection]) -> None:
    """One rebuild of a projection at a time (docs/explanation/semantics.md, "Commands are
    idempotent").

    Two rebuilds of the same projection would both fill its fresh tables (the second
    resumes at the position the first one committed) and count events twice. Each
    rebuild holds a session lock per projection on its own connection, released when the
    rebuild ends or its process dies; a second one refuses at once, before touching any
    table.
    """
    for projection in sorted(projections, key=lambda p: p.name):
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s)", (rebuild_lock_key(projection.name),)
        ).fetchone()
        if not (row and row[0]):
            conn.execute("SELECT pg_advisory_unlock_all()")
            raise RebuildBusy(
                f"projection {projection.name} is being rebuilt by another process; "
                "wait for it to finish (`pickpack projections status` shows its progress)"
            )


@dataclass
class RebuildReport:
    projection: str
    events: int
    seconds: float
    resumed_from: int
    # Slices of orders the store was replayed in (projections/rebuild_slices.py; 0: in
    # position order only).
    slices: int = 0
    # The baseline's position the fresh tables started from (0: from empty tables).
    baseline: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


Progress = Callable[[int, int], None]  # (position, head)


def _head(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM stored_events").fetchone()
    return int(row[0]) if row else 0


def _tables_exist(conn: psycopg.Connection, projections: list[Projection]) -> bool:
    """Whether the fresh tables of every projection are there (a rebuild left behind)."""
    return all(
        conn.execute("SELECT to_regclass(%s)", (t + SUFFIX,)).fetchone()[0]  # type: ignore[index]
        for p in projections
        for t in p.tables
    )


def _restart_at(
    conn: psycopg.Connection, projections: list[Projection], position: int, started_from: int
) -> None:
    """Record the position a rebuild goes on from in position order (after slices), and
    the baseline's position its tables started from."""
    conn.execute(
        "INSERT INTO projection_rebuilds (projection, position, head, started_from) "
        "SELECT unnest(%s::text[]), %s, %s, %s "
        "ON CONFLICT (projection) DO UPDATE SET position = excluded.position, "
        "head = excluded.head, started_from = excluded.started_from",
        ([p.name for p in projections], position, position, started_from),
    )


def _baseline_copy(group: list[Projection], at: int) -> Callable[[psycopg.Connection], None] | None:
    """What puts the baseline's rows at position `at` into the fresh tables again (None:
    they started empty); RebuildOutrun if the baseline has moved on since."""
    if not at:
        return None

    def copy(conn: psycopg.Connection) -> None:
        now = baseline.start(conn, group)
        if now != at:
            raise RebuildOutrun(
                f"the views' baseline moved from position {at} to {now} while this rebuild "
                "ran (an archive); run the rebuild again: it starts from the new baseline"
            )
        for p in group:
            baseline.copy_rows(conn, p, SUFFIX)

    return copy


def _prepare(
    conn: psycopg.Connection, projections: list[Projection], head: int
) -> tuple[int, int, bool]:
    """Resume a rebuild left behind, or start fresh tables: empty, or (once facts are
    archived) a copy of the baseline. The position to go on from, the position the
    tables started from, and whether they are new."""
    names = [p.name for p in projections]
    tables = [t for p in projections for t in p.tables]
    with conn.transaction():
        # One snapshot for the baseline's position and the rows copied: an archive may
        # be folding into the baseline meanwhile (projections/baseline.py).
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        start = baseline.start(conn, projections)  # BaselineMissing: refused
        rows = conn.execute(
            "SELECT position, started_from FROM projection_rebuilds WHERE projection = ANY(%s)",
            (names,),
        ).fetchall()
        points = {(int(r[0]), int(r[1])) for r in rows}
        if len(rows) == len(names) and len(points) == 1 and _tables_exist(conn, projections):
            position, started_from = points.pop()
            # Not resumed if an archive took facts it had not read yet: start afresh.
            if _outrun(conn, started_from) is None:
                return position, started_from, False
        for t in tables:
            create_like(conn, t, t + SUFFIX)
        if start:
            for p in projections:
                baseline.copy_rows(conn, p, SUFFIX)
        for name in names:
            conn.execute(
                "INSERT INTO projection_rebuilds (projection, position, head, started_from) "
                "VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (projection) DO UPDATE SET position = excluded.position, "
                "head = excluded.head, started_from = excluded.started_from, "
                "started_at = now()",
                (name, start, head, start),
            )
    return start, start, True


def _flush(
    conn: psycopg.Connection, group: list[Projection], accs: list[Accumulator], position: int
) -> None:
    """Write what the accumulators hold and the position they reached, together."""
    with conn.transaction(), conn.cursor() as curs:
        for acc in accs:
            acc.flush(curs)
        curs.execute(
            "UPDATE projection_rebuilds SET position = %s WHERE projection = ANY(%s)",
            (position, [p.name for p in group]),
        )


def rebuild(
    url: str,
    projections: Projection | list[Projection],
    chunk: int = 10_000,
    flush_seconds: float = 30.0,
    flush_every: int = 2_000_000,
    progress: Progress | None = None,
    max_rows: int = MAX_ROWS,
    slices: bool = True,
) -> RebuildReport:
    """Rebuild one projection or several in one pass over the store, then swap them in.

    Events are read once, decoded once and folded in memory into every projection being
    rebuilt. The folds are written (with the position reached, so a killed rebuild
    resumes from there) every `flush_seconds` or `flush_every` events, whenever the
    accumulators hold more than `max_rows` rows, and at the end: a row touched by many
    events is written once per flush, not once per event, and memory stays bounded
    however many lines the store holds.

    A fresh rebuild that finds, in the first half of the store, that it cannot hold every
    row goes on by slices of orders instead (projections/rebuild_slices.py; `slices`
    False: never), then folds the events recorded meanwhile in position order.
    """
    group = projections if isinstance(projections, list) else [projections]
    started = time.perf_counter()
    with no_cyclic_gc(), psycopg.connect(url, autocommit=True) as conn:
        _claim(conn, group)
        try:
            head = _head(conn)
            accs = [p.accumulator(SUFFIX) for p in group]
            # A sliced replay left behind is resumed only while nothing is archived: it
            # started from empty tables, which an archive since has made wrong. (One
            # that started from a baseline starts again from it.)
            archived = _first_retained(conn) > 0
            sliced = None
            if _tables_exist(conn, group) and not archived:
                sliced = rebuild_slices.resumable(conn, group)
            if sliced is not None:
                resumed_from = position = started_from = 0
            else:
                rebuild_slices.forget(conn, group)
                position, started_from, fresh = _prepare(conn, group, head)
                resumed_from = 0 if fresh else position
                if fresh and started_from == 0:  # the fresh tables were just created, empty
                    for acc in accs:
                        acc.start_empty()
            began = position
            unflushed = sliced_into = 0
            may_slice = slices and sliced is None
            last_flush = time.monotonic()
            # Replay without pausing anyone.
            while True:
                if sliced is not None:
                    position = rebuild_slices.replay(
                        conn, url, group, accs, sliced, decode, chunk, max_rows, progress
                    )
                    with conn.transaction():
                        rebuild_slices.forget(conn, group)
                        _restart_at(conn, group, position, started_from)
                    sliced_into, sliced = sliced.slices, None
                events = read_chunk(conn, position, chunk)
                if events:
                    with conn.cursor() as curs:
                        for acc in accs:
                            acc.fold(curs, events)
                    position = events[-1].position
                    unflushed += len(events)
                held = sum(acc.rows() for acc in accs)
                if held > max_rows and may_slice:
                    # The first time it cannot hold every row: slices, if early enough
                    # that little is thrown away, and if the store's facts by order hold
                    # every event.
                    may_slice = False
                    head = _head(conn)
                    if (
                        resumed_from == 0
                        and position - started_from <= (head - started_from) // 2
                        and rebuild_slices.covered(conn, head)
                    ):
                        restart = _baseline_copy(group, started_from)
                        sliced = rebuild_slices.begin(
                            conn, group, SUFFIX, head, started_from, restart
                        )
                        if started_from:
                            # Forget what the pass in position order folded: the slices
                            # fold from the baseline's rows again, loading each once.
                            accs = [p.accumulator(SUFFIX) for p in group]
                        unflushed = 0
                        continue
                due = (
                    unflushed >= flush_every
                    or time.monotonic() - last_flush >= flush_seconds
                    or held > max_rows
                )
                if unflushed and (due or not events):
                    _flush(conn, group, accs, position)
                    unflushed = 0
                    last_flush = time.monotonic()
                if progress:
                    progress(position, max(head, position))
                if not events:
                    head = _head(conn)
                    if head <= position:
                        break
            # Statistics for the fresh tables before they serve: a table never analyzed
            # is planned from guesses until autovacuum gets to it. Outside the swap's
            # transaction, so the live runners are not paused for it.
            for t in [t for p in group for t in p.tables]:
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(t + SUFFIX)))
            # The swap: pause the live runners, take the last events, rename, track.
            with conn.transaction():
                for projection in sorted(group, key=lambda p: p.name):
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(projection.name),))
                outrun = _outrun(conn, started_from)
                if outrun is not None:
                    raise outrun  # the next run starts afresh from the new baseline
                while events := read_chunk(conn, position, chunk):
                    with conn.cursor() as curs:
                        for acc in accs:
                            acc.fold(curs, events)
                    position = events[-1].position
                with conn.cursor() as curs:
                    for acc in accs:
                        acc.flush(curs)
                for t in [t for p in group for t in p.tables]:
                    swap_in(conn, t, SUFFIX)
                for projection in group:
                    conn.execute(UPSERT_POSITION, (projection.name, position))
                conn.execute(
                    "DELETE FROM projection_rebuilds WHERE projection = ANY(%s)",
                    ([p.name for p in group],),
                )
            if progress:
                progress(position, position)
        finally:
            # Released here, not left to the connection's close: a backend frees its
            # session locks only once it has processed the disconnect, so a rebuild
            # started right after this one could still find them held.
            if not conn.closed and not conn.broken:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock_all()")
    return RebuildReport(
        "+".join(p.name for p in group),
        position - began,
        time.perf_counter() - started,
        resumed_from,
        sliced_into,
        started_from,
    )
