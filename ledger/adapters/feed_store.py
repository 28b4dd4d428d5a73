"""The events feed's read (GET /events): a page of a tenant's packing events in the
order of their own timestamps, as stored.

Every scan is indexed by (tenant, event_time, position) in the transaction that records
it (packing_events), so a page is chosen on that index alone and only its rows are read
from the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import Connection
from psycopg.rows import tuple_row

from ledger.adapters.compression import state_json

# Before any timestamp a scan can carry: the start of a feed read from its beginning.
_BEGINNING = datetime(1, 1, 1, tzinfo=UTC)

# A page of the feed: the index picks the page (a keyset start, then an offset over
# index entries only), and each of its rows is then looked up in the store by key.
FEED_PAGE = (
    "WITH page AS MATERIALIZED ("
    " SELECT position, event_time FROM packing_events WHERE tenant = %s AND event_time > %s"
    " ORDER BY event_time, position OFFSET %s LIMIT %s) "
    "SELECT s.state FROM page, LATERAL (SELECT state FROM stored_events"
    " WHERE notification_id = page.position OFFSET 0) s"  # OFFSET 0: keep it a lookup
    " ORDER BY page.event_time, page.position"
)


def events_after(
    conn: Connection[Any], tenant: str, after: datetime | None, offset: int, limit: int
) -> list[dict[str, Any]]:
    """A page of a tenant's packing events, strictly after `after`, by (time, position).

    The page is chosen on the feed index alone (tenant, event_time, position): the
    `timestamp` filter is a keyset start on that index, and an offset skips index
    entries only. Just the page's rows are then looked up by key (a LATERAL lookup:
    a plain join tempted the planner into scanning the whole store). Their states,
    decompressed where stored compressed, are joined into one JSON array and decoded
    in one call.
    """
    with conn.cursor(binary=True, row_factory=tuple_row) as curs:
        rows = curs.execute(FEED_PAGE, (tenant, after or _BEGINNING, offset, limit)).fetchall()
    if not rows:
        return []
    json = state_json
    return orjson.loads(b"[" + b",".join([json(r[0]) for r in rows]) + b"]")  # type: ignore[no-any-return]
