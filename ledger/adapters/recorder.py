"""The one adapter that reaches into eventsourcing's PostgreSQL recorder.

Order commands and recalculation jobs decide under the append lock every writer takes
(`sql.SERIALIZE_APPENDS`: an advisory lock, not the library's EXCLUSIVE table lock, which
VACUUM, ANALYZE and CREATE INDEX CONCURRENTLY would wait on and stall), then insert
through the library's own statements, so commit order equals notification-id order for
every writer (projections tailing by id never skip an event). The library's own inserts
take the same lock: its `_lock_table` runs `lock_table_statements`, replaced here. The
library exposes those steps only as protected methods of its recorder; as
the library's own examples extend a recorder by subclassing it, this subclass is the
single place that calls them, and tests/store/test_recorder_contract.py runs the
library's recorder test cases against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from ledger.adapters import sql


class LedgerRecorder(PostgresApplicationRecorder):
    """The library's application recorder, with its locked-insert steps made public."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every insert the library makes runs these (its `_lock_table`): its lock
        # timeout, then the ledger's append lock in place of its EXCLUSIVE table lock.
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            SQL("SELECT pg_advisory_xact_lock({0})").format(sql.APPEND_LOCK_KEY),
            SQL("LOCK TABLE {0}.{1} IN ROW EXCLUSIVE MODE").format(
                Identifier(self.datastore.schema), Identifier(self.events_table_name)
            ),
        ]

    def lock_table(self, curs: Any) -> None:
        """Take the append lock (`sql.SERIALIZE_APPENDS`) in `curs`'s transaction."""
        self._lock_table(curs)

    def insert_in_transaction(self, curs: Any, stored: Sequence[StoredEvent]) -> list[int]:
        """Insert `stored` with the library's statement; their notification ids, in order."""
        self._insert_stored_events(curs, stored)
        ids = self._fetch_ids_after_insert_events(curs, stored)
        assert ids is not None and len(ids) == len(stored)
        return list(ids)

    def next_versions(self, curs: Any, streams: list[UUID]) -> dict[UUID, int]:
        """Next version of each stream; under the append lock the read is race-free."""
        found = {
            r["originator_id"]: r["v"]
            for r in curs.execute(sql.NEXT_VERSIONS, (list(set(streams)),))
            if r["v"] is not None
        }
        return {s: found.get(s, 0) + 1 for s in streams}
