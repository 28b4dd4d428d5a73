"""Opening what every process needs: settings, the database, its migrations, the store.

`serve`, every CLI command and the API's Runtime open them here, in this order, and
close them in reverse: one place decides how a store is opened (compressed states or
not, from the settings) so no command can open it differently.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ledger.adapters.database import Database, provision
from ledger.adapters.event_store import EventStore
from ledger.adapters.migrate import migrate
from ledger.config import Settings


@dataclass(frozen=True)
class Opened:
    """What `opened` hands out: valid until its block ends."""

    settings: Settings
    database: Database
    store: EventStore
    applied: list[str]  # the migrations this opening applied (names, in order)


@contextmanager
def opened(settings: Settings | None = None, database: Database | None = None) -> Iterator[Opened]:
    """Settings (from the environment unless given), the database (the configured URL,
    else the embedded server; stopped at the end only if provisioned here), migrated,
    and an event store over it (its pools connect on first use)."""
    settings = settings or Settings.from_env()
    own = database is None
    database = database or provision(settings)
    try:
        applied = migrate(database.url)
        store = EventStore.from_url(database.url, compress=settings.compress_events)
        try:
            yield Opened(settings, database, store, applied)
        finally:
            store.close()
    finally:
        if own:
            database.stop()
