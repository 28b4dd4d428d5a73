"""The plan PostgreSQL chooses for a statement, for tests that pin index use."""

from __future__ import annotations

import psycopg
from psycopg import sql


def plan(conn: psycopg.Connection, query: str | sql.Composed, params: tuple[object, ...]) -> str:
    """The plan PostgreSQL chooses for `query` (with its parameters) as it stands now."""
    statement = sql.SQL(query) if isinstance(query, str) else query
    return "\n".join(str(r[0]) for r in conn.execute(sql.SQL("EXPLAIN ") + statement, params))
