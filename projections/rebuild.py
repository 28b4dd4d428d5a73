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


def _prepare(conn: psycopg.Connection, projection: Projection, head: int) -> int:
    """Resume a rebuild left behind, or start fresh tables; the position to go on from."""
    row = conn.execute(
        "SELECT position FROM projection_rebuilds WHERE projection = %s", (projection.name,)
    ).fetchone()
    tables_exist = all(
        conn.execute("SELECT to_regclass(%s)", (t + SUFFIX,)).fetchone()[0]  # type: ignore[index]
        for t in projection.tables
    )
    if row is not None and tables_exist:
        return int(row[0])
    with conn.transaction():
        for t in projection.tables:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(t + SUFFIX)))
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier(t + SUFFIX), sql.Identifier(t)
                )
            )
        conn.execute(
            "INSERT INTO projection_rebuilds (projection, position, head) VALUES (%s, 0, %s) "
            "ON CONFLICT (projection) DO UPDATE SET position = 0, head = excluded.head, "
            "started_at = now()",
            (projection.name, head),
        )
    return 0


def _apply_chunk(
    conn: psycopg.Connection, projection: Projection, position: int, chunk: int
) -> int:
    """Fold up to `chunk` events after `position` into the fresh tables; the new position."""
    rows = conn.execute(SELECT_BATCH, (position, chunk)).fetchall()
    if not rows:
        return position
    events = decode_rows([(r[0], r[1], bytes(r[2])) for r in rows])
    with conn.cursor() as curs:
        projection.apply(curs, events, suffix=SUFFIX)
    new_position = events[-1].position
    conn.execute(
        "UPDATE projection_rebuilds SET position = %s WHERE projection = %s",
        (new_position, projection.name),
    )
    return new_position


def rebuild(
    url: str,
    projection: Projection,
    chunk: int = 50_000,
    progress: Progress | None = None,
) -> RebuildReport:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        head = _head(conn)
        resumed_from = position = _prepare(conn, projection, head)
        # Replay without pausing anyone, one committed chunk at a time.
        while True:
            with conn.transaction():
                new_position = _apply_chunk(conn, projection, position, chunk)
            if progress:
                progress(new_position, max(head, new_position))
            if new_position == position:
                break
            position = new_position
            if position >= head:
                head = _head(conn)
        # The swap: pause the live runner, take the last events, rename, track.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(projection.name),))
            while True:
                new_position = _apply_chunk(conn, projection, position, chunk)
                if new_position == position:
                    break
                position = new_position
            for t in projection.tables:
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
            conn.execute(UPSERT_POSITION, (projection.name, position))
            conn.execute("DELETE FROM projection_rebuilds WHERE projection = %s", (projection.name,))
        if progress:
            progress(position, position)
    return RebuildReport(
        projection.name, position - resumed_from, time.perf_counter() - started, resumed_from
    )
