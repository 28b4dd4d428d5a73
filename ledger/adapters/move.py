"""Copy a whole store from one PostgreSQL to another, whatever their major versions.

Moving off the embedded PostgreSQL (16, from the pgserver wheel) to a server of another
major version cannot go through pg_dump: an older pg_dump refuses a newer server, and
an older pg_restore cannot read a newer dump. This copies what the service keeps
instead, table by table, with COPY in PostgreSQL's binary format (the same for every
version since 7.4): the target gets this release's schema from its own migrations, then
every row of every table (events, views and their positions, the outbox with its
queued recalculations, OAuth clients, keys, import progress), then each sequence's
value. Then both sides are compared table by table: the row count and a digest of the
rows' text, taken in the same order on both sides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ledger.adapters import partitions
from ledger.adapters.migrate import migrate, pending

log = logging.getLogger(__name__)

# The ledger of applied migrations is the target's own (written by its migrate).
_NOT_COPIED = frozenset({"schema_migrations"})
# Rows the migrations write into a new database (its own key, a position), replaced by
# the source's: they do not make a target "not empty".
_SEEDED = frozenset({"ledger_keys", "notification_tracking", "event_partitioning"})


class MoveError(RuntimeError):
    """The move cannot start (a target that is not empty, a source still in use), or the
    two sides disagree afterwards."""


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int
    same: bool


def tables(conn: psycopg.Connection) -> list[str]:
    """The public schema's tables, each after the tables its foreign keys reference."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "ORDER BY c.relname"
        )
    ]
    refs: dict[str, set[str]] = {name: set() for name in names}
    for child, parent in conn.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
    ):
        if child in refs and parent != child:
            refs[child].add(parent)
    ordered: list[str] = []
    while refs:
        ready = sorted(name for name, parents in refs.items() if parents <= set(ordered))
        if not ready:
            raise MoveError(f"foreign keys form a cycle among {sorted(refs)}")
        ordered.extend(ready)
        for name in ready:
            del refs[name]
    return [name for name in ordered if name not in _NOT_COPIED]


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    """The columns a row is written with (generated columns are computed again)."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (table,),
        )
    ]


# A connection closed just before (this command's own migration step, a `serve` just
# stopped) stays in pg_stat_activity until its backend has exited: on a loaded machine,
# long enough for the move to find it and refuse (seen in the suite under three workers).
# A client still connected after this long is really using the source.
IN_USE_GRACE_SECONDS = 5.0


def _in_use(conn: psycopg.Connection) -> list[str]:
    """The other clients of the source, once those leaving have had time to go."""
    deadline = time.monotonic() + IN_USE_GRACE_SECONDS
    while True:
        users = [
            f"{r[0] or 'a client'} (pid {r[1]})"
            for r in conn.execute(
                "SELECT application_name, pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        ]
        if not users or time.monotonic() >= deadline:
            return users
        time.sleep(0.1)


def _has_rows(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
    ).fetchone()
    return bool(row and row[0])


def move(
    source_url: str, target_url: str, progress: Callable[[str, int], None] | None = None
) -> list[TableCheck]:
    """Copy the store at `source_url` into the empty database at `target_url`, then
    compare them; MoveError when it cannot start or when the two disagree."""
    with psycopg.connect(source_url, autocommit=True) as source:
        if missing := pending(source):
            raise MoveError(
                f"the source lacks migrations {', '.join(missing)}: start this release "
                "on it once (`pickpack migrate`), then move"
            )
        if users := _in_use(source):
            raise MoveError(
                f"the source is in use by {', '.join(users)}: stop `pickpack serve` and "
                "every other command using it first, so that nothing is written during "
                "the move"
            )
    with psycopg.connect(target_url, autocommit=True) as target:
        if holding := [t for t in tables(target) if t not in _SEEDED and _has_rows(target, t)]:
            raise MoveError(
                f"the target database is not empty ({', '.join(holding)} hold rows): give "
                "the URL of a new, empty database"
            )
    migrate(target_url)
    _partitions_for(source_url, target_url)
    with (
        psycopg.connect(source_url) as source,
        psycopg.connect(target_url) as target,
    ):
        # One snapshot of the source for every table, one transaction on the target:
        # a move that fails leaves the target as migrate left it.
        source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        copying = tables(source)
        # What the target's migrations wrote (a key of its own, positions) is replaced.
        target.execute(
            sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, copying)))
        )
        for table in copying:
            columns = sql.SQL(", ").join(map(sql.Identifier, _columns(source, table)))
            name = sql.Identifier(table)
            copied = 0
            with (
                # COPY reads a partitioned table (the event store) only through a query.
                source.cursor().copy(
                    sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT BINARY)").format(
                        columns, name
                    )
                ) as out,
                target.cursor().copy(
                    sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(name, columns)
                ) as into,
            ):
                for chunk in out:
                    into.write(chunk)
                    copied += len(chunk)
            if progress is not None:
                progress(table, copied)
        for seq, value, called in source.execute(
            "SELECT s.sequencename, s.last_value, s.last_value IS NOT NULL "
            "FROM pg_sequences s WHERE s.schemaname = 'public'"
        ).fetchall():
            if called:
                target.execute("SELECT setval(%s, %s, true)", (seq, value))
        target.commit()
    return compare(source_url, target_url)


def _partitions_for(source_url: str, target_url: str) -> None:
    """Partitions in the target for every position the source has drawn (the target's
    migrations made them for an empty store only)."""
    with psycopg.connect(source_url, autocommit=True) as source:
        head = partitions.drawn(source) if partitions.is_partitioned(source) else 0
    if head:
        with psycopg.connect(target_url, autocommit=True) as target:
            target.execute("SELECT setval('stored_events_notification_id_seq', %s)", (head,))
        partitions.ensure_ahead(target_url)


def _digest(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    columns = sql.SQL(", ").join(map(sql.Identifier, _columns(conn, table)))
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(r, E'\\n' ORDER BY r)), '') "
            "FROM (SELECT md5(ROW({})::text) AS r FROM {}) AS rows"
        ).format(columns, sql.Identifier(table))
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def compare(source_url: str, target_url: str) -> list[TableCheck]:
    """Each table's row count and rows on both sides (the target must have every table)."""
    checks = []
    with (
        psycopg.connect(source_url, autocommit=True) as source,
        psycopg.connect(target_url, autocommit=True) as target,
    ):
        for conn in (source, target):
            conn.execute("SET TimeZone = 'UTC'")  # timestamps' text in one zone
            conn.execute("SET extra_float_digits = 3")
        for table in tables(source):
            here, there = _digest(source, table), _digest(target, table)
            checks.append(TableCheck(table, here[0], here == there))
    bad = [c.table for c in checks if not c.same]
    if bad:
        raise MoveError(f"the two databases differ after the move, in {', '.join(bad)}")
    return checks
