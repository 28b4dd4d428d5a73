"""Reads of the order's story: the tenant's facts by position, an order's facts and
deliveries, an order's facts up to an instant.

Every fact is indexed by (tenant, position) in the transaction that records it
(packing_events for scans, order_facts for everything else; migrations/0011), and
positions commit in order (every writer holds the store's write lock from drawing its
positions until it commits: docs/explanation/architecture.md, "Consistency argument"). So a reader
that asks for "positions after P" never passes over a fact that commits later: the
change feed is gap-free whatever timestamps scanners send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from psycopg import Connection
from psycopg.rows import dict_row, tuple_row

from ledger.adapters.compression import state_json
from ledger.domain.events import LedgerEvent, event_class
from ledger.domain.story import recorded_instant

Fact = tuple[int, type[LedgerEvent] | None, dict[str, Any]]

# The next `n` facts of a tenant after position `a`: each index gives its first `n` in
# position order, the merge keeps the first `n` of both, and only those are looked up
# in the store (by key: LATERAL ... OFFSET 0 keeps it a probe per position).
CHANGES = """
WITH f AS MATERIALIZED (
    (SELECT position FROM packing_events
     WHERE tenant = %(t)s AND position > %(a)s ORDER BY position LIMIT %(n)s)
    UNION ALL
    (SELECT position FROM order_facts
     WHERE tenant = %(t)s AND position > %(a)s ORDER BY position LIMIT %(n)s)
    ORDER BY position LIMIT %(n)s
)
SELECT f.position, s.topic, s.state
FROM f, LATERAL (SELECT topic, state FROM stored_events
                 WHERE notification_id = f.position OFFSET 0) s
ORDER BY f.position
"""

# The next `n` facts of one order after position `a` (its scans, its own stream and its
# corrections, which order_facts indexes too).
HISTORY = """
WITH f AS MATERIALIZED (
    (SELECT position FROM packing_events
     WHERE tenant = %(t)s AND order_id = %(o)s AND position > %(a)s
     ORDER BY position LIMIT %(n)s)
    UNION ALL
    (SELECT position FROM order_facts
     WHERE tenant = %(t)s AND order_id = %(o)s AND position > %(a)s
     ORDER BY position LIMIT %(n)s)
    ORDER BY position LIMIT %(n)s
)
SELECT f.position, s.topic, s.state
FROM f, LATERAL (SELECT topic, state FROM stored_events
                 WHERE notification_id = f.position OFFSET 0) s
ORDER BY f.position
"""

# Every fact of one order, in commit order (the as-of fold keeps those recorded by then).
ORDER_FACTS = """
WITH f AS MATERIALIZED (
    SELECT position FROM packing_events WHERE tenant = %(t)s AND order_id = %(o)s
    UNION ALL
    SELECT position FROM order_facts WHERE tenant = %(t)s AND order_id = %(o)s
)
SELECT f.position, s.topic, s.state
FROM f, LATERAL (SELECT topic, state FROM stored_events
                 WHERE notification_id = f.position OFFSET 0) s
ORDER BY f.position
"""

# The calculations requests of one order and what became of them.
DELIVERIES = (
    "SELECT id, job_id, status, attempts, last_status_code, last_message, created_at, "
    "updated_at FROM recalculation_outbox WHERE tenant = %s AND order_id = %s ORDER BY seq"
)

HEAD = "SELECT max(notification_id) FROM stored_events"


def _facts(rows: list[Any]) -> list[Fact]:
    loads = orjson.loads
    return [(int(r[0]), event_class(r[1]), loads(state_json(r[2]))) for r in rows]


def changes(conn: Connection[Any], tenant: str, after: int, limit: int) -> list[Fact]:
    """The tenant's next `limit` facts after position `after`, in commit order."""
    with conn.cursor(binary=True, row_factory=tuple_row) as curs:
        rows = curs.execute(CHANGES, {"t": tenant, "a": after, "n": limit}).fetchall()
    return _facts(rows)


def history(
    conn: Connection[Any], tenant: str, order_id: str, after: int, limit: int
) -> list[Fact]:
    """The order's next `limit` facts after position `after`, in commit order."""
    with conn.cursor(binary=True, row_factory=tuple_row) as curs:
        rows = curs.execute(
            HISTORY, {"t": tenant, "o": order_id, "a": after, "n": limit}
        ).fetchall()
    return _facts(rows)


def order_facts_until(
    conn: Connection[Any], tenant: str, order_id: str, until: datetime
) -> list[Fact]:
    """The order's facts recorded at or before `until`, in commit order."""
    with conn.cursor(binary=True, row_factory=tuple_row) as curs:
        rows = curs.execute(ORDER_FACTS, {"t": tenant, "o": order_id}).fetchall()
    return [f for f in _facts(rows) if recorded_instant(f[2]) <= until]


def deliveries(conn: Connection[Any], tenant: str, order_id: str) -> list[dict[str, Any]]:
    """The order's calculations requests: status, attempts, last HTTP status, times."""
    with conn.cursor(row_factory=dict_row) as curs:
        return list(curs.execute(DELIVERIES, (tenant, order_id)).fetchall())


def head(conn: Connection[Any]) -> int:
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(HEAD).fetchone()
    return int(row[0] or 0) if row else 0
