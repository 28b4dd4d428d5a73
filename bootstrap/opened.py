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

    @property
    def store(self) -> EventStore:
        if self._store is None:
            self._store = EventStore.from_url(
                self.database.url, compress=self.settings.compress_events
            )
        return self._store

    def close(self) -> None:
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
