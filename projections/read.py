"""Reads of the order read models, with read-your-writes.

The projections follow the store asynchronously, so a client that just posted an event
or a PATCH could read a view that has not seen it yet. Every order read therefore first
waits (bounded) until the views' tracked positions reach the store's head as it was when
the request started: a write acknowledged before the read is always visible in it. If
the views do not catch up in time the read answers from them anyway (stale, never
blocked forever) and logs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

from psycopg import Connection

log = logging.getLogger(__name__)

ORDER_VIEWS = ("order_status", "line_totals")
DEFAULT_TIMEOUT = 2.0
POLL_INTERVAL = 0.005

_ORDER_COLUMNS = (
    "order_id, document, packing_status, assignees, packaging, holding_area_number, "
    "products_total, products_packed, products_canceled"
)


def store_head(conn: Connection[Any]) -> int:
    row = conn.execute("SELECT max(notification_id) AS head FROM stored_events").fetchone()
    return int(_first(row) or 0)


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def wait_for_head(
    connect: Callable[[], AbstractContextManager[Connection[Any]]],
    names: Sequence[str] = ORDER_VIEWS,
    timeout: float = DEFAULT_TIMEOUT,
    head: int | None = None,
) -> bool:
    """Wait until every view in `names` has applied the store's head; False on timeout.

    Each look takes a connection from `connect` and gives it back before sleeping: a
    wait can last the whole timeout when the views lag (a catch-up, a rebuild), and
    readers holding pooled connections meanwhile would leave none for the scanners'
    appends (tests/reliability/test_reads_never_starve_writes.py).
    """
    if head is None:
        with connect() as conn:
            head = store_head(conn)
    if head == 0:
        return True
    deadline = time.monotonic() + timeout
    while True:
        with connect() as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM notification_tracking "
                "WHERE application_name = ANY(%s) AND notification_id >= %s",
                (list(names), head),
            ).fetchone()
        if int(_first(row) or 0) >= len(names):
            return True
        if time.monotonic() >= deadline:
            log.warning("read models %s behind head %s after %.1fs", names, head, timeout)
            return False
        time.sleep(POLL_INTERVAL)


def order_row(conn: Connection[Any], tenant: str, order_id: str) -> dict[str, Any] | None:
    """A registered order's view row, or None."""
    row = conn.execute(
        f"SELECT {_ORDER_COLUMNS} FROM order_status "
        "WHERE tenant = %s AND order_id = %s AND registered",
        (tenant, order_id),
    ).fetchone()
    return _as_dict(row)


def packlist_rows(
    conn: Connection[Any], tenant: str, site_code: str, delivery_date: date
) -> list[dict[str, Any]]:
    """Registered, not cancelled orders of a site and date, by window end then orderId."""
    cur = conn.execute(
        f"SELECT {_ORDER_COLUMNS} FROM order_status "
        "WHERE tenant = %s AND site_code = %s AND delivery_date = %s AND registered "
        "AND packing_status IS DISTINCT FROM 'CANCELLED' "
        "ORDER BY window_end NULLS LAST, order_id",
        (tenant, site_code, delivery_date),
    )
    return [r for r in (_as_dict(row) for row in cur.fetchall()) if r is not None]


def order_cycles(conn: Connection[Any], tenant: str, site_code: str, since: date) -> list[str]:
    """Distinct delivery dates from `since` on of a site's registered, open orders."""
    cur = conn.execute(
        "SELECT DISTINCT delivery_date FROM order_status "
        "WHERE tenant = %s AND site_code = %s AND delivery_date >= %s AND registered "
        "AND packing_status IS DISTINCT FROM 'CANCELLED' ORDER BY delivery_date",
        (tenant, site_code, since),
    )
    return [_first(r).isoformat() for r in cur.fetchall()]


def line_totals(
    conn: Connection[Any], tenant: str, order_ids: Iterable[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """order_id -> product_id -> {picked, packed, canceled, unit}."""
    ids = sorted(set(order_ids))
    result: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in ids}
    if not ids:
        return result
    cur = conn.execute(
        "SELECT order_id, product_id, picked, packed, canceled, unit FROM line_totals "
        "WHERE tenant = %s AND order_id = ANY(%s)",
        (tenant, ids),
    )
    for row in cur.fetchall():
        r = _as_dict(row) or {}
        result[r["order_id"]][r["product_id"]] = r
    return result


def order_entries(
    conn: Connection[Any], tenant: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(order_id, product_id) -> the registered order's entry for that product."""
    wanted = set(pairs)
    orders = sorted({o for o, _ in wanted})
    if not orders:
        return {}
    cur = conn.execute(
        "SELECT order_id, document FROM order_status "
        "WHERE tenant = %s AND order_id = ANY(%s) AND registered",
        (tenant, orders),
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in cur.fetchall():
        r = _as_dict(row) or {}
        for entry in (r.get("document") or {}).get("entries") or []:
            key = (r["order_id"], str(entry.get("productId")))
            if key in wanted and key not in found:
                found[key] = entry
    return found


def _as_dict(row: Any) -> dict[str, Any] | None:
    """Rows as dicts whatever the connection's row factory."""
    if row is None or isinstance(row, dict):
        return row
    raise TypeError("projections.read expects a dict_row connection")
