"""The views' baseline at the archive point: what a rebuild starts from once facts are gone.

`pickpack archive` (ledger/services/archive.py) calls `fold` for each partition [lo, hi)
once its files are verified and before it records and drops it. Every fact before `hi`
not folded yet is folded, by each projection's own accumulator, into the tables
`<view table>__baseline` (made by migrations/0061_projection_baselines.sql, or on first
use for a projection without its own migration) on top of what the earlier archives
folded there:
baseline(hi) = fold(baseline(lo), facts in [lo, hi)), exactly as the live runner folds
them into the views. A rebuild then starts from a copy of those rows and replays the
store from the baseline's position instead of from 0 (projections/rebuild.py,
projections/rebuild_tenant.py; docs/explanation/retention.md, section 6).

`projection_baselines` holds the last position folded per projection; it commits with
each flush, in the same transaction as the rows, so an archive stopped mid-fold resumes
where the last flush left it, and a fact is never folded twice: each flush also checks
that the position it started from is still the one recorded (a second archive folding
at the same time fails there instead of counting the same facts again). Nothing else
writes these tables.

The baseline is folded by the projections' code of the release that archived: a later
fix to a projection is applied by a rebuild to the retained facts only (what the
baseline holds was folded before; to refold those, rebuild in a staging store where the
archives are imported).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from ledger.adapters.archive_store import retention
from ledger.domain.retention import archived_after
from projections.base import Accumulator, Projection
from projections.fresh_tables import create_like
from projections.registry import PROJECTIONS
from projections.replaying import MAX_ROWS, decode, no_cyclic_gc

SUFFIX = "__baseline"
# Facts folded between two flushes at most: what an archive stopped mid-fold folds again
# (flushes also come whenever the accumulators hold more than the rebuild's bound).
FLUSH_EVERY = 500_000

_READ = (
    "SELECT notification_id, topic, state FROM stored_events "
    "WHERE notification_id > %s AND notification_id < %s ORDER BY notification_id LIMIT %s"
)


class BaselineMissing(RuntimeError):
    """Facts are archived that no baseline holds: a rebuild from the store would lose
    them (an archive recorded before the baselines, or a projection added since)."""


class BaselineConflict(RuntimeError):
    """Another process folded into the baseline while this one did."""


def positions(conn: psycopg.Connection[Any], group: list[Projection]) -> dict[str, int]:
    """The last position folded into each projection's baseline (absent: none yet)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT projection, position FROM projection_baselines WHERE projection = ANY(%s)",
            ([p.name for p in group],),
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def start(conn: psycopg.Connection[Any], group: list[Projection]) -> int:
    """The position a rebuild of `group` replays from: 0 while nothing is archived (the
    store holds every fact); once something is, the baseline's position, the same for
    every projection of the group (they are folded together). BaselineMissing names the
    first retained position when a baseline does not reach it."""
    cutoff, first = retained = retention(conn)
    if cutoff is None:
        return 0
    found = positions(conn, group)
    behind = [p.name for p in group if archived_after(retained, found.get(p.name, -1)) is not None]
    if behind:
        raise BaselineMissing(
            f"this store archived its facts before position {first}, and no baseline of "
            f"{', '.join(behind)} reaches it (an archive recorded before the baselines "
            "existed): a rebuild from what the store retains would lose their totals. "
            "Rebuild in a staging store where the archives are imported "
            "(docs/how-to/retention.md)"
        )
    at = {found[p.name] for p in group}
    if len(at) != 1:  # pragma: no cover - they are folded and flushed together
        raise BaselineMissing(
            f"the baselines of {', '.join(p.name for p in group)} stand at different "
            f"positions ({sorted(at)}): rebuild them one at a time"
        )
    return at.pop()


def columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """A baseline table's columns, in order (a copy names them: a column the view gained
    since the baseline was made takes its default)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            (table + SUFFIX,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def copy_rows(
    conn: psycopg.Connection[Any], projection: Projection, into: str, tenant: str | None = None
) -> None:
    """Copy the baseline's rows (of `tenant` only, if given) into `<table><into>`."""
    for t in projection.tables:
        names = sql.SQL(", ").join(sql.Identifier(c) for c in columns(conn, t))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} WHERE %s::text IS NULL OR tenant = %s"
            ).format(sql.Identifier(t + into), names, names, sql.Identifier(t + SUFFIX)),
            (tenant, tenant),
        )


def fold(
    conn: psycopg.Connection[Any],
    upper: int,
    say: Callable[[str], None] = lambda _: None,
    group: list[Projection] | None = None,
    chunk: int = 10_000,
    flush_every: int = FLUSH_EVERY,
    max_rows: int | None = None,
) -> int:
    """Fold every fact before position `upper` not folded yet into the baselines of
    `group` (every projection); the facts folded. `conn` is in autocommit.

    A baseline that does not reach the first retained position (facts archived before
    it existed) cannot be made: it is left as it is, `say` tells, and rebuilds of that
    projection stay refused (`start`).
    """
    group = list(PROJECTIONS.values()) if group is None else group
    bound = MAX_ROWS if max_rows is None else max_rows
    with conn.transaction():
        for p in group:
            for t in p.tables:
                create_like(conn, t, t + SUFFIX, replace=False)
        found = positions(conn, group)
        _, first = retained = retention(conn)
        by_position: dict[int, list[Projection]] = {}
        for p in group:
            at = found.get(p.name)
            if at is None and first == 0:
                # The first archive: the baseline starts empty.
                for t in p.tables:
                    conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(t + SUFFIX)))
                conn.execute(
                    "INSERT INTO projection_baselines (projection, position) VALUES (%s, 0)",
                    (p.name,),
                )
                at = 0
            if at is None or archived_after(retained, at) is not None:
                say(
                    f"no baseline of {p.name}: facts before position {first} were archived "
                    "without one, so its rebuilds stay refused"
                )
                continue
            by_position.setdefault(at, []).append(p)
    folded = 0
    with no_cyclic_gc():
        for at, projections in sorted(by_position.items()):
            if at < upper - 1:
                folded += _fold(conn, projections, at, upper, chunk, flush_every, bound)
    return folded


def _fold(
    conn: psycopg.Connection[Any],
    group: list[Projection],
    at: int,
    upper: int,
    chunk: int,
    flush_every: int,
    max_rows: int,
) -> int:
    accs = [p.accumulator(SUFFIX) for p in group]
    if at == 0:
        for acc in accs:
            acc.start_empty()  # the tables were emptied with the position 0 recorded
    position, folded, unflushed = at, 0, 0
    while True:
        with conn.cursor(binary=True) as curs:
            rows = curs.execute(_READ, (position, upper, chunk)).fetchall()
        if not rows:
            break
        events = decode(rows)
        with conn.cursor() as curs:
            for acc in accs:
                acc.fold(curs, events)
        position = events[-1].position
        folded += len(events)
        unflushed += len(events)
        if unflushed >= flush_every or sum(acc.rows() for acc in accs) > max_rows:
            flush(conn, group, accs, at, position)
            at, unflushed = position, 0
    # Every fact before `upper` is in: the position says so even where the last ones
    # were positions without a fact.
    flush(conn, group, accs, at, upper - 1)
    return folded


def flush(
    conn: psycopg.Connection[Any],
    group: list[Projection],
    accs: list[Accumulator],
    expected: int,
    position: int,
) -> None:
    """Write what the accumulators hold and the position reached, in one transaction,
    if the baselines still stand where this fold found them."""
    names = [p.name for p in group]
    with conn.transaction(), conn.cursor() as curs:
        # First: the row locks taken here make a second folder wait, then find the
        # position moved and fail, before anything of it is written.
        moved = curs.execute(
            "UPDATE projection_baselines SET position = %s, updated_at = now() "
            "WHERE projection = ANY(%s) AND position = %s",
            (position, names, expected),
        ).rowcount
        if moved != len(names):
            raise BaselineConflict(
                f"the baselines of {', '.join(names)} moved from position {expected} while "
                "this archive folded into them (another archive running?); run it again"
            )
        for acc in accs:
            acc.flush(curs)
