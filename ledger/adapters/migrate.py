"""Schema migrations: numbered SQL files in ``migrations/``, applied once, in order.

Every process that starts runs :func:`migrate`. The whole run happens under one
PostgreSQL advisory lock, so two processes starting together apply each file once:
the second waits, then finds everything applied. The connection is bounded like every
other (ledger/adapters/connection.py): a frozen first host of a multi-host URL costs one
connect timeout, and a server that stops answering fails the run instead of hanging it.
Each file runs in its own
transaction together with the row that records it (name and SHA-256 checksum); a
recorded file whose text has since changed is refused, naming the file, because a
DBA must never have two databases that claim the same version and differ.

From release 0.2.0 on, migrations are expand/contract: a release only adds what the
previous release ignores (tables, nullable columns, indexes built concurrently...), so
the previous release keeps running beside it during a rolling upgrade; what the
previous release still reads is removed only by a later release, once nothing reads it
(docs/how-to/upgrade.md). A migration that cannot be rolled says so on a line of its
own, `-- not rollable: <why>`, and is applied only while no process of another release
is connected: each connection names its release in its application_name
(`pickpack-<role>/<version>`; the releases before 0.2.0 write `pickpack-<role>`), so
pg_stat_activity tells. Otherwise migrate refuses, naming them and what to do.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg.rows import tuple_row

from ledger.adapters import connection, partitions
from ledger.adapters.connection import unbounded
from ledger.adapters.database import APP_PREFIX, application_name
from ledger.version import service_version

MIGRATION_LOCK_KEY = 0x70_69_63_6B_70_61_63_6B  # "pickpack" as an advisory-lock key
LOCK_POLL_SECONDS = 0.1
# A file whose lock_timeout struck is tried again after a pause, for this long at most.
LOCK_RETRY_SECONDS = 300.0
LOCK_RETRY_PAUSE_SECONDS = 0.5
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_NOT_ROLLABLE = re.compile(r"^-- not rollable: *(.+)$", re.MULTILINE)
# The first migration of the expand/contract rule (the last one of the previous
# release, 0.1.x, was 0012).
FIRST_ROLLING_VERSION = 13


class MigrationError(RuntimeError):
    """The database's recorded migrations disagree with the files shipped."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def not_rollable(self) -> str | None:
        """Why the previous release cannot run beside this migration (None: it can)."""
        found = _NOT_ROLLABLE.search(self.sql)
        return found.group(1).strip() if found else None


class OtherReleaseConnected(MigrationError):
    """A migration that cannot be rolled is pending while another release is connected."""


def shipped_migrations() -> list[Migration]:
    """The migration files shipped with this version of the service, in order."""
    found = []
    for entry in resources.files("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number: {versions}")
    return found


_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrate(url: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply every pending migration; return the names applied by this call."""
    migrations = shipped_migrations() if migrations is None else migrations
    applied_now: list[str] = []
    with connection.connect(
        url, autocommit=True, application_name=application_name("migrate")
    ) as conn:
        _lock(conn)
        try:
            conn.execute(_CREATE_LEDGER)
            recorded: dict[int, tuple[str, str]] = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT version, name, checksum FROM schema_migrations")
            }
            _check_fleet(conn, [m for m in migrations if m.version not in recorded])
            for mig in migrations:
                if mig.version in recorded:
                    name, checksum = recorded[mig.version]
                    if checksum != mig.checksum:
                        raise MigrationError(
                            f"migration {mig.name} was already applied (as {name}) but its "
                            "file has changed since; add a new migration instead of editing it"
                        )
                    continue
                _apply(conn, mig)
                applied_now.append(mig.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    # Every process starts here: the store's next partitions are made before it appends.
    partitions.ensure_ahead(url)
    return applied_now


def _apply(conn: psycopg.Connection, mig: Migration) -> None:
    """Run `mig` and record it, in one transaction.

    A file that must take a table's strongest lock sets a short `lock_timeout` (the
    partitioned store's switch, 0054): were it to wait behind a long read, every append
    and read would queue behind it. When the timeout strikes, nothing was applied; the
    file is tried again a little later, for up to LOCK_RETRY_SECONDS.
    """
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while True:
        try:
            # A file may rebuild an index for minutes: no client deadline on it.
            with conn.transaction(), unbounded(conn):
                conn.execute(mig.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
            return
        except psycopg.errors.LockNotAvailable as exc:
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"migration {mig.name} could not take its lock within its lock_timeout "
                    f"for {LOCK_RETRY_SECONDS:.0f} s ({exc}); a long transaction holds the "
                    "table (pg_stat_activity tells which): end it, then run `pickpack "
                    "migrate` again"
                ) from exc
            time.sleep(LOCK_RETRY_PAUSE_SECONDS)


def _lock(conn: psycopg.Connection) -> None:
    """Take the migrations' lock, waiting for another process that holds it.

    Polled rather than waited for in one statement, so each round trip stays within the
    client's deadline (a frozen server is noticed) while the wait itself may be long.
    """
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
        time.sleep(LOCK_POLL_SECONDS)


def pending(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Names of shipped migrations not yet recorded (for /ready)."""
    migrations = shipped_migrations() if migrations is None else migrations
    try:
        with conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    except psycopg.errors.UndefinedTable:
        return [m.name for m in migrations]
    recorded: dict[int, str] = dict(rows)
    return [m.name for m in migrations if recorded.get(m.version) != m.checksum]


def other_releases(conn: psycopg.Connection) -> dict[str, int]:
    """Connections to this database from pickpack processes of another release, by
    application_name (this session left out)."""
    rows = conn.execute(
        "SELECT application_name, count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND application_name LIKE %s AND application_name NOT LIKE %s "
        "GROUP BY application_name ORDER BY application_name",
        (APP_PREFIX + "%", f"%/{service_version()}"),
    ).fetchall()
    return {name: count for name, count in rows}


def _check_fleet(conn: psycopg.Connection, pending: list[Migration]) -> None:
    blocking = [m for m in pending if m.not_rollable]
    if not blocking:
        return
    others = other_releases(conn)
    if not others:
        return
    releases = sorted({name.partition("/")[2] or "before 0.2.0" for name in others})
    raise OtherReleaseConnected(
        f"migration {blocking[0].name} cannot run while another release serves "
        f"({blocking[0].not_rollable}), and {sum(others.values())} connection(s) of "
        f"release {', '.join(releases)} are open ({', '.join(others)}): stop every "
        f"process of that release, then run `pickpack migrate` again, and start this "
        f"release's processes after it (docs/how-to/upgrade.md)"
    )
