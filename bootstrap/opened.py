"""Opening what every process needs: settings, the database, its migrations, the store.

`serve`, every CLI command and the API's Runtime open them here, in this order, and
close them in reverse: one place decides how a store is opened (compressed states or
not, from the settings) so no command can open it differently.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ledger.adapters import connection
from ledger.adapters.database import Database, provision
from ledger.adapters.event_store import EventStore
from ledger.adapters.migrate import migrate
from ledger.adapters.replica import Connect, ReplicaReads
from ledger.config import Settings


class Opened:
    """What `opened` hands out, valid until its block ends: the settings, the database
    (migrated; `applied` names the migrations this opening applied), and the event store.

    The store is opened when first asked for: its pools hold connections from the start,
    and a command that needs only the database (`migrate`, `projections status`, serve's
    parent process, `database move`, which refuses a source in use) should hold none.
    """

    def __init__(self, settings: Settings, database: Database, applied: list[str]) -> None:
        self.settings = settings
        self.database = database
        self.applied = applied
        self._store: EventStore | None = None
        self._replica: ReplicaReads | None = None

    @property
    def store(self) -> EventStore:
        if self._store is None:
            self._store = EventStore.from_url(
                self.database.url, compress=self.settings.compress_events
            )
        return self._store

    @property
    def replica(self) -> ReplicaReads | None:
        """The replica's reads (PICKPACK_DATABASE_REPLICA_URL), or None: not configured."""
        url = self.settings.database_replica_url
        if url is not None and self._replica is None:
            self._replica = ReplicaReads.from_url(
                self.store.connection, url, self.settings.database_replica_max_lag_seconds
            )
        return self._replica

    @property
    def lagging_reads(self) -> Connect:
        """Connections for the reads that may lag the primary (the events feed, history,
        the change feed's catch-up, exports): the replica's, else the store's own."""
        return self.catch_up or self.store.connection

    @property
    def catch_up(self) -> Connect | None:
        """The replica's reads for the change feed's catch-up, or None: no replica (the
        feed then reads the primary only, once per page)."""
        replica = self.replica
        return None if replica is None else replica.connection

    def close(self) -> None:
        if self._replica is not None:
            self._replica.close()
            self._replica = None
        if self._store is not None:
            self._store.close()
            self._store = None


@contextmanager
def opened(settings: Settings | None = None, database: Database | None = None) -> Iterator[Opened]:
    """Settings (from the environment unless given), the database (the configured URL,
    else the embedded server; stopped at the end only if provisioned here), migrated, and
    the event store over it (opened on first use, closed at the end)."""
    settings = settings or Settings.from_env()
    # Every connection from here on is bounded (ledger/adapters/connection.py).
    connection.configure(
        settings.database_connect_timeout_seconds, settings.database_timeout_seconds
    )
    own = database is None
    database = database or provision(settings)
    try:
        parts = Opened(settings, database, migrate(database.url))
        try:
            yield parts
        finally:
            parts.close()
    finally:
        if own:
            database.stop()
