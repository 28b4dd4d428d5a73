"""Reads of the order read models, with read-your-writes per tenant.

The projections follow the store asynchronously, so a client that just posted an event
or a PATCH could read a view that has not seen it yet. Every order read therefore first
waits (bounded) until the views' tracked positions reach its tenant's high-water mark as
it was when the request started (`tenant_heads`: the position of the tenant's latest
recorded event, raised by every writer in the transaction that appends the events): a
write of that tenant acknowledged before the read is always visible in it. Other
tenants' events are not waited for, so one tenant's burst, or its long backlog, does not
hold up another's reads. If the views do not catch up in time the read answers from
them anyway (stale, never blocked forever), says by how much (`Freshness.behind`) and
logs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import psycopg
import zstandard
from psycopg import Connection

from ledger.adapters.compression import state_json
from ledger.domain.counting import lines_from_stored

log = logging.getLogger(__name__)

ORDER_VIEWS = ("order_status", "line_totals")
# What an order's detail and the packlist read: the order_status row, lines included.
ORDER_ROW_VIEWS = ("order_status",)
DEFAULT_TIMEOUT = 2.0
POLL_INTERVAL = 0.005

_ORDER_COLUMNS = (
    "order_id, document, packing_status, assignees, packaging, holding_area_number, "
    "products_total, products_packed, products_canceled"
)

# The first look, one round trip: the tenant's mark (one key lookup) and the views'
# tracked positions.
_MARK_AND_TRACKED = (
    "SELECT 'mark' AS name, position FROM tenant_heads WHERE tenant = %s "
    "UNION ALL "
    "SELECT application_name, notification_id FROM notification_tracking "
    "WHERE application_name = ANY(%s)"
)
_TRACKED = (
    "SELECT application_name AS name, notification_id AS position FROM notification_tracking "
    "WHERE application_name = ANY(%s)"
)
# The oldest event a view has not applied: its state records when it was recorded.
_OLDEST_AFTER = (
    "SELECT state FROM stored_events WHERE notification_id > %s ORDER BY notification_id LIMIT 1"
)


@dataclass(frozen=True)
class Freshness:
    """What a read waited for, and whether the views reached it.

    `behind` is None when they did; else how many seconds behind the views were when
    the wait gave up (the age of the oldest event they had not applied yet).
    """

    mark: int
    behind: float | None = None

    @property
    def stale(self) -> bool:
        return self.behind is not None


def look(conn: Connection[Any], tenant: str, names: Sequence[str] = ORDER_VIEWS) -> Freshness | int:
    """One round trip: Freshness if every view in `names` has applied `tenant`'s latest
    recorded event (or the tenant has none), else the mark they must reach."""
    rows = _rows(conn.execute(_MARK_AND_TRACKED, (tenant, list(names))).fetchall())
    mark = rows.pop("mark", 0)
    return Freshness(mark) if _reached(rows, names, mark) else mark


def wait_for_mark(
    connect: Callable[[], AbstractContextManager[Connection[Any]]],
    tenant: str,
    mark: int,
    names: Sequence[str] = ORDER_VIEWS,
    timeout: float = DEFAULT_TIMEOUT,
) -> Freshness:
    """Wait until every view in `names` has reached `mark` (`tenant`'s, read by `look`).

    Each look takes a connection from `connect` and gives it back before sleeping: a
    wait can last the whole timeout when the views lag (a catch-up, a rebuild), and
    readers holding pooled connections meanwhile would leave none for the scanners'
    appends (tests/reliability/test_reads_never_starve_writes.py).
    """
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(POLL_INTERVAL)
        with connect() as conn:
            rows = _rows(conn.execute(_TRACKED, (list(names),)).fetchall())
            if _reached(rows, names, mark):
                return Freshness(mark)
            if time.monotonic() >= deadline:
                behind = _behind(conn, min(rows.get(name, 0) for name in names), timeout)
                log.warning(
                    "read models %s behind tenant %s's mark %s after %.1fs (%.3fs behind)",
                    list(names), tenant, mark, timeout, behind,
                )  # fmt: skip
                return Freshness(mark, behind)


def seconds_behind(conn: Connection[Any], tracked: int) -> float | None:
    """Seconds since the oldest event after position `tracked` was recorded: how far
    behind a view at `tracked` is. None if no event follows it."""
    state = _first(conn.execute(_OLDEST_AFTER, (tracked,)).fetchone())
    if state is None:
        return None
    at = datetime.fromisoformat(orjson.loads(state_json(state))["timestamp"]["_data_"])
    return max((datetime.now(UTC) - at).total_seconds(), 0.0)


def _behind(conn: Connection[Any], tracked: int, waited: float) -> float:
    """seconds_behind, or what the read waited if that cannot be told (a state this code
    cannot parse must not fail the read)."""
    try:
        seconds = seconds_behind(conn, tracked)
    except (psycopg.Error, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
        log.warning("could not tell how far behind the views are: %s", exc)
        return waited
    return waited if seconds is None else seconds


def _rows(rows: Iterable[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows:
        r = _as_dict(row) or {}
        found[str(r["name"])] = int(r["position"])
    return found


def _reached(tracked: dict[str, int], names: Sequence[str], mark: int) -> bool:
    return all(tracked.get(name, 0) >= mark for name in names)


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


# An order's row carries its line sums (`lines`: productId -> unit -> [picked, packed,
# canceled], read as counting.Lines; folded by ledger.domain.status from the same scans
# and corrections as line_totals), and its status and counts are derived from those very
# sums: read from the row, the figures and the lines are one fold in one snapshot, with no
# lookup per order.
# Reading them from line_totals instead cost a subquery per order (an index probe, a
# json_agg, a second decode): most of a 200-order packlist's statement time.


PACKLIST = (
    f"SELECT {_ORDER_COLUMNS}, lines FROM order_status "
    "WHERE tenant = %s AND site_code = %s AND delivery_date = %s AND registered "
    "AND (%s OR packing_status IS DISTINCT FROM 'CANCELLED') "
    "ORDER BY window_end NULLS LAST, order_id"
)


def order_row(conn: Connection[Any], tenant: str, order_id: str) -> dict[str, Any] | None:
    """A registered order's view row with its `lines` (counting.Lines), or None.

    One statement: the row and its lines come from one snapshot.
    """
    return _with_lines(
        _as_dict(
            conn.execute(
                f"SELECT {_ORDER_COLUMNS}, lines FROM order_status "
                "WHERE tenant = %s AND order_id = %s AND registered",
                (tenant, order_id),
            ).fetchone()
        )
    )


def packlist_rows(
    conn: Connection[Any],
    tenant: str,
    site_code: str,
    delivery_date: date,
    include_cancelled: bool = False,
) -> list[dict[str, Any]]:
    """Registered orders of a site and date (the CANCELLED ones only when asked), by
    window end then orderId, each with its `lines` (read in the same statement, so from
    the same snapshot)."""
    cur = conn.execute(PACKLIST, (tenant, site_code, delivery_date, include_cancelled))
    return [r for r in (_with_lines(_as_dict(row)) for row in cur.fetchall()) if r is not None]


def _with_lines(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The row with its stored lines (JSON arrays) as counting.Lines."""
    if row is not None:
        row["lines"] = lines_from_stored(row["lines"])
    return row


def order_cycles(conn: Connection[Any], tenant: str, site_code: str, since: date) -> list[str]:
    """Distinct delivery dates from `since` on of a site's registered, open orders."""
    cur = conn.execute(
        "SELECT DISTINCT delivery_date FROM order_status "
        "WHERE tenant = %s AND site_code = %s AND delivery_date >= %s AND registered "
        "AND packing_status IS DISTINCT FROM 'CANCELLED' ORDER BY delivery_date",
        (tenant, site_code, since),
    )
    return [_first(r).isoformat() for r in cur.fetchall()]


def order_entries(
    conn: Connection[Any], tenant: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(order_id, product_id) -> the registered order's entries for that product."""
    wanted = set(pairs)
    orders = sorted({o for o, _ in wanted})
    if not orders:
        return {}
    cur = conn.execute(
        "SELECT order_id, document FROM order_status "
        "WHERE tenant = %s AND order_id = ANY(%s) AND registered",
        (tenant, orders),
    )
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in cur.fetchall():
        r = _as_dict(row) or {}
        for entry in (r.get("document") or {}).get("entries") or []:
            key = (r["order_id"], str(entry.get("productId")))
            if key in wanted:
                found.setdefault(key, []).append(entry)
    return found


def _as_dict(row: Any) -> dict[str, Any] | None:
    """Rows as dicts whatever the connection's row factory."""
    if row is None or isinstance(row, dict):
        return row
    raise TypeError("projections.read expects a dict_row connection")
