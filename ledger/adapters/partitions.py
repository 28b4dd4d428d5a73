"""The event store's partitions: created ahead of need, resized, detached and dropped.

`stored_events` and `packing_events` (the scan index) are partitioned by range of
position with the same bounds (migrations 0052-0054; docs/explanation/retention.md): the
first partition is the table as it was before the conversion, each later one holds
`event_partitioning.size` positions. There is no default partition (it would forbid
detaching a partition concurrently), so an append whose position has no partition fails:
:func:`ensure_ahead` keeps partitions ready ahead of the head. Every process runs it
when it starts (after its migrations), the service every few minutes, and `pickpack
store partitions` on demand (for a cron job).

A new partition is made as a table of its own and then attached: ATTACH takes SHARE
UPDATE EXCLUSIVE on the parent (appends and reads go on), where CREATE TABLE ...
PARTITION OF would take ACCESS EXCLUSIVE. Each partition gets its own unique keys, the
ones a partitioned table cannot have globally: a stream's version and a tenant's eventId
(across partitions the append lock guarantees both: retention.md, "Uniqueness").

pg_partman was not taken: creating a partition ahead is these few statements, its
retention drops data without the archive and verification that must come first, and it
must be installed in the server, which a managed PostgreSQL may not offer and the
embedded one does not.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql as q

from ledger.adapters import connection
from ledger.adapters.connection import unbounded
from ledger.adapters.sql import APPEND_LOCK_KEY

# Serialises partition maintenance between processes (each runs ensure_ahead at start).
PARTITIONS_LOCK_KEY = 0x70_70_70_61_72_74_73_00  # "pppartss"
AHEAD = 2  # partitions kept ready beyond the one receiving appends
LOCK_TIMEOUT = "100ms"  # a scan waits at most about this long behind maintenance
RETRY_SECONDS = 60.0
TABLES = ("stored_events", "packing_events")
# The storage settings of migrations/0001_event_store.sql, for each new store partition.
STORE_SETTINGS = (
    "autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000, "
    "autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000, "
    "autovacuum_analyze_scale_factor = 0.01"
)
_BOUND = re.compile(r"FROM \((MINVALUE|'?(-?\d+)'?)\) TO \((MAXVALUE|'?(-?\d+)'?)\)")


@dataclass(frozen=True)
class Partition:
    """One range of positions: [lower, upper); lower None is the first (from MINVALUE)."""

    number: int
    lower: int | None
    upper: int

    def name(self, table: str = "stored_events") -> str:
        return f"{table}_p{self.number}"


def is_partitioned(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass('stored_events')"
    ).fetchone()
    return row is not None and _first(row) == "p"


def partitions(conn: psycopg.Connection[Any], table: str = "stored_events") -> list[Partition]:
    """`table`'s attached partitions, oldest first."""
    found = []
    for row in conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
        (table,),
    ):
        name, bound = (row["relname"], row["pg_get_expr"]) if isinstance(row, dict) else row
        m = _BOUND.search(bound)
        if m is None or not name.startswith(f"{table}_p"):
            continue
        lower = None if m.group(1) == "MINVALUE" else int(m.group(2))
        found.append(Partition(int(name.rsplit("_p", 1)[1]), lower, int(m.group(4))))
    return sorted(found, key=lambda p: p.upper)


def size(conn: psycopg.Connection[Any]) -> int:
    return int(_first(conn.execute("SELECT size FROM event_partitioning").fetchone()))


def drawn(conn: psycopg.Connection[Any]) -> int:
    """The last position drawn from the store's sequence (0 before the first)."""
    row = conn.execute(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
        "FROM stored_events_notification_id_seq"
    ).fetchone()
    return int(_first(row))


def ensure_ahead(url: str, ahead: int = AHEAD) -> list[str]:
    """Create partitions until `ahead` of them lie wholly beyond the last position drawn;
    the names of the partitions created (none when the store is not partitioned)."""
    with connection.connect(url, autocommit=True) as conn:
        if not is_partitioned(conn):
            return []
        made: list[str] = _retrying(conn, lambda: _create_ahead(conn, ahead))
        if made:
            _analyze(conn)
        return made


def resize(url: str, new_size: int, ahead: int = AHEAD) -> list[str]:
    """Partitions created from now on hold `new_size` positions. Partitions not yet used
    (every one beyond the last position drawn; on a store that never drew one, all of
    them) are dropped and made again at the new size. Returns the partitions created."""
    if new_size < 1:
        raise ValueError("size: a partition holds at least one position")
    with connection.connect(url, autocommit=True) as conn:
        if not is_partitioned(conn):
            raise ValueError("the store is not partitioned yet: run `pickpack migrate` first")

        def replace() -> list[str]:
            with conn.transaction():
                _lock(conn, with_appends=True)
                conn.execute("UPDATE event_partitioning SET size = %s", (new_size,))
                head = drawn(conn)
                for part in partitions(conn):
                    unused = (part.lower is not None and part.lower > head) or head == 0
                    if unused and not _holds_rows(conn, part):
                        for table in TABLES:
                            conn.execute(
                                q.SQL("DROP TABLE {}").format(q.Identifier(part.name(table)))
                            )
            return _create_ahead(conn, ahead)

        return _retrying(conn, replace)


def detach_and_drop(url: str, part: Partition) -> None:
    """Detach `part` from both tables without blocking appends (CONCURRENTLY: SHARE
    UPDATE EXCLUSIVE), then drop it. Resumable: what is already detached is dropped."""
    # DETACH ... CONCURRENTLY waits for every transaction that may see the partition.
    with connection.connect(url, autocommit=True) as conn, unbounded(conn):
        for table in TABLES:
            name = part.name(table)
            attached = conn.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s)", (name,)
            ).fetchone()
            pending = conn.execute(
                "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s) AND inhdetachpending",
                (name,),
            ).fetchone()
            if pending:  # an earlier run was interrupted mid-detach
                conn.execute(
                    q.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(
                        q.Identifier(table), q.Identifier(name)
                    )
                )
            elif attached:
                conn.execute(
                    q.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
                        q.Identifier(table), q.Identifier(name)
                    )
                )
            conn.execute(q.SQL("DROP TABLE IF EXISTS {}").format(q.Identifier(name)))


def _create_ahead(conn: psycopg.Connection[Any], ahead: int) -> list[str]:
    created: list[str] = []
    with conn.transaction():
        _lock(conn, with_appends=False)
        step = size(conn)
        head = drawn(conn)
        parts = partitions(conn)
        number = max((p.number for p in parts), default=0)
        upper = parts[-1].upper if parts else 1
        beyond = sum(1 for p in parts if p.lower is not None and p.lower > head)
        while beyond < ahead or upper <= head + 1:
            number += 1
            part = Partition(number, upper, upper + step)
            _create(conn, part)
            created.append(part.name())
            upper = part.upper
            beyond += part.lower is not None and part.lower > head
    return created


def _create(conn: psycopg.Connection[Any], part: Partition) -> None:
    se, pe = q.Identifier(part.name("stored_events")), q.Identifier(part.name("packing_events"))
    bounds = q.SQL("FOR VALUES FROM ({}) TO ({})").format(
        q.Literal(part.lower), q.Literal(part.upper)
    )
    for statement in (
        q.SQL(
            "CREATE TABLE {} (LIKE stored_events INCLUDING DEFAULTS) WITH (" + STORE_SETTINGS + ")"
        ).format(se),
        q.SQL("ALTER TABLE {} ADD PRIMARY KEY (originator_id, originator_version)").format(se),
        q.SQL("ALTER TABLE stored_events ATTACH PARTITION {} ").format(se) + bounds,
        q.SQL("CREATE TABLE {} (LIKE packing_events INCLUDING DEFAULTS)").format(pe),
        q.SQL("ALTER TABLE {} ALTER COLUMN tenant SET (n_distinct = 1)").format(pe),
        q.SQL("ALTER TABLE {} ADD PRIMARY KEY (event_id, tenant)").format(pe),
        q.SQL("ALTER TABLE packing_events ATTACH PARTITION {} ").format(pe) + bounds,
    ):
        conn.execute(statement)


def _analyze(conn: psycopg.Connection[Any]) -> None:
    """Statistics of the partitioned tables themselves, which autovacuum never gathers
    (it analyses each partition): the planner's estimates over all partitions."""
    with unbounded(conn):  # seconds on a large store: a sample of every partition
        for table in TABLES:
            conn.execute(q.SQL("ANALYZE {}").format(q.Identifier(table)))


def _holds_rows(conn: psycopg.Connection[Any], part: Partition) -> bool:
    return any(
        conn.execute(
            q.SQL("SELECT EXISTS (SELECT FROM {})").format(q.Identifier(part.name(t)))
        ).fetchone()[0]  # type: ignore[index]
        for t in TABLES
    )


def _lock(conn: psycopg.Connection[Any], *, with_appends: bool) -> None:
    conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITIONS_LOCK_KEY,))
    if with_appends:  # dropping a partition takes ACCESS EXCLUSIVE on the parent
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK_KEY,))


def _retrying(conn: psycopg.Connection[Any], step: Any) -> Any:
    """`step()` again after a lock_timeout, as the migrations do (never queue appends)."""
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            return step()
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _first(row: Any) -> Any:
    assert row is not None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
