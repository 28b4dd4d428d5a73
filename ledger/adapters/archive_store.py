"""What `pickpack archive` reads and records in the database (ledger/services/archive.py).

A partition's facts are read per tenant through the change feed's own query
(story_store.changes), so an archive's lines are exactly what `pickpack events export`
writes. The `archives` table (migrations/0055_archives.sql) holds each archived
partition; the latest cut-off is what scans and reads are checked against, cached for a
few seconds per process (`RetentionCutoff`): the archive waits longer than that between
recording its row and dropping the partition, so no process can miss a cut-off while
the facts it protects are gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection
from psycopg import sql as q
from psycopg.rows import tuple_row

from ledger.adapters import sql, story_store
from ledger.adapters.partitions import Partition
from ledger.adapters.pool import UNAVAILABLE_ERRORS
from ledger.adapters.story_store import Fact

CUTOFF_CACHE_SECONDS = 5.0
# A cut-off older than this is not used: `pickpack archive` drops a partition
# ledger/services/archive.SETTLE_SECONDS (11 s) after recording its cut-off, so a value
# this old may miss the newest one, and a retry of a scan just archived could count twice.
CUTOFF_STALE_SECONDS = 2 * CUTOFF_CACHE_SECONDS
# After a failed read the thread tries again this soon, not a whole CUTOFF_CACHE_SECONDS
# later: once the cut-off has gone stale every scan answers 503 until a read succeeds, and
# a database back from an outage must take scans within seconds (test_fault_outage).
CUTOFF_RETRY_SECONDS = 0.5
log = logging.getLogger(__name__)
PROJECTIONS = ("line_totals", "order_status")


def _lower(part: Partition) -> int:
    return part.lower if part.lower is not None else 0


def tenants(conn: Connection[Any], part: Partition) -> list[str]:
    """The tenants with a fact in `part`."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            q.SQL(
                "SELECT DISTINCT tenant FROM {} UNION "
                "SELECT DISTINCT tenant FROM order_facts WHERE position >= %s AND position < %s"
            ).format(q.Identifier(part.name("packing_events"))),
            (_lower(part), part.upper),
        ).fetchall()
    return sorted(r[0] for r in rows)


def facts(conn: Connection[Any], tenant: str, part: Partition, page: int = 1000) -> Iterator[Fact]:
    """The tenant's facts in `part`, in position order (the change feed's items)."""
    after = _lower(part) - 1
    while True:
        found = story_store.changes(conn, tenant, after, page)
        for fact in found:
            if fact[0] >= part.upper:
                return
            yield fact
        if len(found) < page:
            return
        after = found[-1][0]


def counts(conn: Connection[Any], part: Partition) -> tuple[int, dict[str, int]]:
    """Stored events in `part`, and the facts per tenant its indexes hold (what the
    files must hold: every stored event is a scan or an order fact)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        stored = curs.execute(
            q.SQL("SELECT count(*) FROM {}").format(q.Identifier(part.name()))
        ).fetchone()
        per: dict[str, int] = {}
        for tenant, n in curs.execute(
            q.SQL(
                "SELECT tenant, count(*) FROM {} GROUP BY tenant UNION ALL "
                "SELECT tenant, count(*) FROM order_facts "
                "WHERE position >= %s AND position < %s GROUP BY tenant"
            ).format(q.Identifier(part.name("packing_events"))),
            (_lower(part), part.upper),
        ):
            per[tenant] = per.get(tenant, 0) + int(n)
    return int(stored[0]) if stored else 0, per


def newest_scan_time(conn: Connection[Any], part: Partition) -> datetime | None:
    """The latest scanner timestamp among the partition's scans."""
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(
            q.SQL("SELECT max(event_time) FROM {}").format(
                q.Identifier(part.name("packing_events"))
            )
        ).fetchone()
    return row[0] if row else None


def projected_up_to(conn: Connection[Any]) -> int:
    """The position every projection has applied (0 when one has not started)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT application_name, notification_id FROM notification_tracking "
            "WHERE application_name = ANY(%s)",
            (list(PROJECTIONS),),
        ).fetchall()
    found: dict[str, Any] = dict(rows)
    return min((int(found.get(p) or 0) for p in PROJECTIONS), default=0)


def record(
    conn: Connection[Any],
    part: Partition,
    cutoff: datetime,
    facts_archived: int,
    manifest_sha256: str,
    location: str,
) -> None:
    """The archive's row: from its commit on, the cut-off applies. In the same transaction:
    each stream's last version and the orders with facts in `part` are kept (the
    baselines), and the order facts' index rows of `part` go with it."""
    with conn.transaction():
        _record(conn, part, cutoff, facts_archived, manifest_sha256, location)
        se, pe = q.Identifier(part.name()), q.Identifier(part.name("packing_events"))
        conn.execute(
            q.SQL(
                "INSERT INTO stream_baselines (originator_id, version) "
                "SELECT originator_id, max(originator_version) FROM {} GROUP BY 1 "
                "ON CONFLICT (originator_id) DO UPDATE "
                "SET version = greatest(stream_baselines.version, excluded.version)"
            ).format(se)
        )
        conn.execute(
            q.SQL(
                "INSERT INTO archived_orders (tenant, order_id, before_position) "
                "SELECT tenant, order_id, %s FROM {} UNION "
                "SELECT tenant, order_id, %s FROM order_facts "
                "WHERE position >= %s AND position < %s "
                "ON CONFLICT (order_id, tenant) DO UPDATE "
                "SET before_position = excluded.before_position"
            ).format(pe),
            (part.upper, part.upper, _lower(part), part.upper),
        )
        conn.execute(
            "DELETE FROM order_facts WHERE position >= %s AND position < %s",
            (_lower(part), part.upper),
        )


def _record(
    conn: Connection[Any],
    part: Partition,
    cutoff: datetime,
    facts_archived: int,
    manifest_sha256: str,
    location: str,
) -> None:
    conn.execute(
        "INSERT INTO archives (partition_name, lower_position, upper_position, cutoff, facts, "
        "manifest_sha256, location) VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (partition_name) DO UPDATE SET cutoff = excluded.cutoff, "
        "facts = excluded.facts, manifest_sha256 = excluded.manifest_sha256, "
        "location = excluded.location",
        (part.name(), part.lower, part.upper, cutoff, facts_archived, manifest_sha256, location),
    )


def open_orders(conn: Connection[Any], part: Partition) -> int:
    """The orders with facts in the recorded `part` that are neither packed nor cancelled
    in the views: commands on them answer 409 from now on (their history is archived)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(
            "SELECT count(*) FROM archived_orders a LEFT JOIN order_status s "
            "ON s.tenant = a.tenant AND s.order_id = a.order_id "
            "WHERE a.before_position = %s "
            "AND coalesce(s.packing_status, '') NOT IN ('PACKED', 'CANCELLED')",
            (part.upper,),
        ).fetchone()
    return int(row[0]) if row else 0


def recorded(conn: Connection[Any], part: Partition) -> tuple[datetime, int] | None:
    """The cut-off and fact count `part` was recorded with by an earlier run (its files
    verified then), or None: not recorded yet."""
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(
            "SELECT cutoff, facts FROM archives WHERE partition_name = %s AND upper_position = %s",
            (part.name(), part.upper),
        ).fetchone()
    return None if row is None else (row[0], int(row[1]))


def mark_dropped(conn: Connection[Any], part: Partition) -> None:
    conn.execute("UPDATE archives SET dropped_at = now() WHERE partition_name = %s", (part.name(),))


def not_marked_dropped(conn: Connection[Any]) -> list[Partition]:
    """The recorded archives whose drop is not marked done: a run stopped between its
    record and `mark_dropped` (detaching, dropping, or just after)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT partition_name, lower_position, upper_position FROM archives "
            "WHERE dropped_at IS NULL ORDER BY upper_position"
        ).fetchall()
    return [Partition(int(n.rsplit("_p", 1)[1]), lower, int(upper)) for n, lower, upper in rows]


def retention(conn: Connection[Any]) -> tuple[datetime | None, int]:
    """The latest cut-off (None: nothing archived) and the first retained position."""
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute("SELECT max(cutoff), max(upper_position) FROM archives").fetchone()
    if row is None or row[0] is None:
        return None, 0
    return row[0], int(row[1])


def order_archived(conn: Connection[Any], tenant: str, order_id: str) -> datetime | None:
    """The cut-off of the last archive that took some of the order's facts (all its
    archived facts are before it); None if none are archived."""
    with conn.cursor(row_factory=tuple_row) as curs:
        row = curs.execute(sql.ARCHIVED_ORDER, (order_id, tenant)).fetchone()
    return row[0] if row else None


# psycopg's errors, and the library's wrappers of them (the pool's timeout comes as its
# OperationalError, which is no psycopg.Error).
_READ_FAILURES: tuple[type[Exception], ...] = (psycopg.Error, *UNAVAILABLE_ERRORS)


class RetentionCutoff:
    """The store's latest cut-off and first retained position, as of at most
    CUTOFF_CACHE_SECONDS ago (every scan consults it; the table changes once per archive).

    Started (`start`, as the service does), a thread reads it every CUTOFF_CACHE_SECONDS,
    so a scan never waits for the database here, and a database that stops answering
    stalls that thread, not the event loop. Not started (a command, a test), a stale value
    is read again on the spot. Either way the first value is read before the first answer.
    """

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Connection[Any]]],
        seconds: float = CUTOFF_CACHE_SECONDS,
    ) -> None:
        self._connect = connect
        self._seconds = seconds
        self._lock = threading.Lock()
        self._value: tuple[datetime | None, int] = (None, 0)
        self._read_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RetentionCutoff:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="retention-cutoff", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        wait = self._seconds
        while not self._stop.wait(wait):
            read = False
            try:
                read = self.refresh()
            except Exception:
                # Whatever it was, the next round tries again: a dead thread would leave
                # every scan answering 503 (the cut-off too old to trust) for good.
                log.exception("reading the retention cut-off failed")
            wait = self._seconds if read else min(self._seconds, CUTOFF_RETRY_SECONDS)

    def refresh(self) -> bool:
        """Read the table now (the thread's round; a test that just archived); False
        when the database could not be reached."""
        now = time.monotonic()
        try:
            with self._connect() as conn:
                value = retention(conn)
        except _READ_FAILURES:
            # The database is unreachable: a scan's own append will say so; the cut-off
            # last read stays (it only ever moves later).
            log.warning("could not read the retention cut-off", exc_info=True)
            return False
        with self._lock:
            self._value, self._read_at = value, now
        return True

    def current(self) -> tuple[datetime | None, int]:
        """The cut-off; CutoffUnknown (a psycopg.OperationalError: the service answers
        503 with Retry-After) when it could not be read for CUTOFF_STALE_SECONDS."""
        with self._lock:
            age = time.monotonic() - self._read_at
            if age < self._seconds or (self._thread is not None and age < CUTOFF_STALE_SECONDS):
                return self._value
        if self._thread is None:
            self.refresh()
        with self._lock:
            if time.monotonic() - self._read_at < CUTOFF_STALE_SECONDS:
                return self._value
        raise CutoffUnknown(
            "the retention cut-off could not be read from the database for "
            f"{CUTOFF_STALE_SECONDS:.0f} s; retry later"
        )


class CutoffUnknown(psycopg.OperationalError):
    """The cut-off is too old to trust: a scan must not be judged without it."""
