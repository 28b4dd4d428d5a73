"""Where `pickpack events import` got to (migrations/0050_event_imports.sql).

Thin: SQL in, plain values out, on any autocommit psycopg connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class Progress:
    position: int  # the last source position recorded here
    lines: int  # lines read up to it
    counts: dict[str, int]
    finished: bool


def load(conn: Any, tenant: str, source: str) -> Progress | None:
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(
            "SELECT position, lines, counts, finished_at IS NOT NULL FROM event_imports"
            " WHERE tenant = %s AND source = %s",
            (tenant, source),
        ).fetchone()
    if row is None:
        return None
    position, lines, counts, finished = row
    return Progress(int(position), int(lines), dict(counts), bool(finished))


def save(
    conn: Any,
    tenant: str,
    source: str,
    position: int,
    lines: int,
    counts: dict[str, int],
    finished: bool = False,
) -> None:
    """Insert or replace the row; `finished` stamps finished_at, otherwise it is cleared."""
    conn.execute(
        "INSERT INTO event_imports (tenant, source, position, lines, counts, finished_at)"
        " VALUES (%s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
        " ON CONFLICT (tenant, source) DO UPDATE SET position = EXCLUDED.position,"
        " lines = EXCLUDED.lines, counts = EXCLUDED.counts,"
        " finished_at = EXCLUDED.finished_at, updated_at = now()",
        (tenant, source, position, lines, Jsonb(counts), finished),
    )
