"""Blue/green rebuild: replay the store into fresh tables, then swap them in at once.

The fresh tables (`<table>__rebuild`, created LIKE the live ones) fill while the live
service keeps serving from the old ones. Progress (the position reached) commits with
each chunk, so a killed rebuild resumes. When the replay reaches the store's head, one
transaction takes the projection's advisory lock (pausing its live runner), applies the
last few events, renames the tables, and sets the tracked position: readers see the old
view or the new one, never a half-built one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from projections.base import Projection, decode_rows, lock_key
from projections.runner import SELECT_BATCH, UPSERT_POSITION

SUFFIX = "__rebuild"


@dataclass
class RebuildReport:
    projection: str
    events: int
    seconds: float
    resumed_from: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


Progress = Callable[[int, int], None]  # (position, head)


def _head(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM stored_events").fetchone()
    return int(row[0]) if row else 0


def _prepare(conn: psycopg.Connection, projections: list[Projection], head: int) -> int:
    """Resume a rebuild left behind, or start fresh tables; the position to go on from."""
    names = [p.name for p in projections]
    rows = conn.execute(
        "SELECT position FROM projection_rebuilds WHERE projection = ANY(%s)", (names,)
    ).fetchall()
    tables = [t for p in projections for t in p.tables]
    tables_exist = all(
        conn.execute("SELECT to_regclass(%s)", (t + SUFFIX,)).fetchone()[0]  # type: ignore[index]
        for t in tables
    )
    positions = {int(r[0]) for r in rows}
    if len(rows) == len(names) and len(positions) == 1 and tables_exist:
        return positions.pop()
    with conn.transaction():
        for t in tables:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(t + SUFFIX)))
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier(t + SUFFIX), sql.Identifier(t)
                )
            )
        for name in names:
            conn.execute(
                "INSERT INTO projection_rebuilds (projection, position, head) VALUES (%s, 0, %s) "
                "ON CONFLICT (projection) DO UPDATE SET position = 0, head = excluded.head, "
                "started_at = now()",
                (name, head),
            )
    return 0


def _apply_chunk(
    conn: psycopg.Connection, projections: list[Projection], position: int, chunk: int
) -> int:
    """Fold up to `chunk` events after `position` into the fresh tables; the new position.

    One read and one decode per event feeds every projection being rebuilt.
    """
    rows = conn.execute(SELECT_BATCH, (position, chunk)).fetchall()
    if not rows:
        return position
    events = decode_rows([(r[0], r[1], bytes(r[2])) for r in rows])
    with conn.cursor() as curs:
        for projection in projections:
            projection.apply(curs, events, suffix=SUFFIX)
    new_position = events[-1].position
    conn.execute(
        "UPDATE projection_rebuilds SET position = %s WHERE projection = ANY(%s)",
        (new_position, [p.name for p in projections]),
    )
    return new_position


def rebuild(
    url: str,
    projections: Projection | list[Projection],
    chunk: int = 50_000,
    progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild one projection or several in one pass over the store, then swap them in."""
    group = projections if isinstance(projections, list) else [projections]
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        head = _head(conn)
        resumed_from = position = _prepare(conn, group, head)
        # Replay without pausing anyone, one committed chunk at a time.
        while True:
            with conn.transaction():
                new_position = _apply_chunk(conn, group, position, chunk)
            if progress:
                progress(new_position, max(head, new_position))
            if new_position == position:
                break
            position = new_position
            if position >= head:
                head = _head(conn)
        # The swap: pause the live runners, take the last events, rename, track.
        with conn.transaction():
            for projection in sorted(group, key=lambda p: p.name):
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(projection.name),))
            while True:
                new_position = _apply_chunk(conn, group, position, chunk)
                if new_position == position:
                    break
                position = new_position
            for t in [t for p in group for t in p.tables]:
                conn.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                        sql.Identifier(t), sql.Identifier(t + "__old")
                    )
                )
                conn.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                        sql.Identifier(t + SUFFIX), sql.Identifier(t)
                    )
                )
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(t + "__old")))
            for projection in group:
                conn.execute(UPSERT_POSITION, (projection.name, position))
            conn.execute(
                "DELETE FROM projection_rebuilds WHERE projection = ANY(%s)",
                ([p.name for p in group],),
            )
        if progress:
            progress(position, position)
    return RebuildReport(
        "+".join(p.name for p in group), position - resumed_from,
        time.perf_counter() - started, resumed_from,
    )
