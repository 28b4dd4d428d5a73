"""Where an Emporix event import got to (migrations/0012_emporix_imports.sql).

Thin: SQL in, plain values out, on any autocommit psycopg connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class Progress:
    page_size: int
    next_page: int
    counts: dict[str, int]
    last_event_time: str | None
    finished: bool


def load(conn: Any, tenant: str, source: str, since: str) -> Progress | None:
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(
            "SELECT page_size, next_page, counts, last_event_time, finished_at IS NOT NULL"
            " FROM emporix_imports WHERE tenant = %s AND source = %s AND since = %s",
            (tenant, source, since),
        ).fetchone()
    if row is None:
        return None
    page_size, next_page, counts, last, finished = row
    return Progress(page_size, next_page, dict(counts), last, finished)


def save(
    conn: Any,
    tenant: str,
    source: str,
    since: str,
    page_size: int,
    next_page: int,
    counts: dict[str, int],
    last_event_time: str | None,
    finished: bool = False,
) -> None:
    """Insert or replace the row; `finished` stamps finished_at, otherwise it is cleared."""
    conn.execute(
        "INSERT INTO emporix_imports"
        " (tenant, source, since, page_size, next_page, counts, last_event_time, finished_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
        " ON CONFLICT (tenant, source, since) DO UPDATE SET page_size = EXCLUDED.page_size,"
        " next_page = EXCLUDED.next_page, counts = EXCLUDED.counts,"
        " last_event_time = EXCLUDED.last_event_time, finished_at = EXCLUDED.finished_at,"
        " updated_at = now()",
        (tenant, source, since, page_size, next_page, Jsonb(counts), last_event_time, finished),
    )
