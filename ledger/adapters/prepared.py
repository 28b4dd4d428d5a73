"""The append's prepared statements: per-session state, and the runners' wake-up."""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

from psycopg import Connection
from psycopg.pq import Escaping
from psycopg.rows import tuple_row

from ledger.adapters import sql

# The channel the library's recorder notifies (its table's name), and runners listen on.
NOTIFY_CHANNEL = "stored_events"


def _name(prefix: str, text: str) -> str:
    """A statement's name, carrying a digest of its text: a session that prepared an
    older text under the same name (kept by a pooler across a deployment) can never
    run it in place of this one, say an insert that does not raise tenant_heads."""
    return f"{prefix}_{hashlib.sha256(text.encode()).hexdigest()[:12]}"


READ_FOR_DECISION = _name("pickpack_read_for_decision", sql.READ_FOR_DECISION)
INSERT_PACKING_EVENTS = _name("pickpack_insert_packing_events", sql.INSERT_PACKING_EVENTS)
_APPEND_STATEMENTS = {
    READ_FOR_DECISION: f"PREPARE {READ_FOR_DECISION}(json) AS {sql.READ_FOR_DECISION}",
    INSERT_PACKING_EVENTS: f"PREPARE {INSERT_PACKING_EVENTS}(json, bytea) AS "
    + sql.INSERT_PACKING_EVENTS,
}
# Connections whose session holds the append's prepared statements.
prepared_connections: weakref.WeakSet[Connection[Any]] = weakref.WeakSet()


def prepare_append(conn: Connection[Any]) -> None:
    """Prepare the append's read and insert in `conn`'s session, unless they are there.

    Named SQL prepared statements, run with EXECUTE, keep their plans as psycopg's own
    do, yet can share one simple-protocol message with other statements: BEGIN, the
    lock and the read travel together, then the insert and COMMIT, two round trips per
    batch rather than four. Each round trip wakes the writer and its backend on a
    core they share with the HTTP server, and the fewer there are the less of that
    core they take (measured with bench/cpu.py). The session's
    client encoding is set to UTF8, the encoding of the JSON documents sent as literals.
    """
    if conn in prepared_connections:
        return
    with conn.cursor(row_factory=tuple_row) as curs:
        curs.execute(
            "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)",
            (list(_APPEND_STATEMENTS),),
        )
        have = {str(name) for (name,) in curs.fetchall()}
    missing = [sql for name, sql in _APPEND_STATEMENTS.items() if name not in have]
    conn.execute("; ".join(["SET client_encoding = 'UTF8'", *missing]))
    prepared_connections.add(conn)


NOTIFY_AND_COMMIT = f"; NOTIFY {NOTIFY_CHANNEL}; COMMIT".encode()


def notify_runners(conn: Connection[Any]) -> None:
    """Wake the projection runners listening in any process (see ProjectionRunner)."""
    conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def literal(conn: Connection[Any], data: bytes) -> bytes:
    """`data` as an SQL string literal, quoted by libpq for this connection."""
    return Escaping(conn.pgconn).escape_literal(data)
