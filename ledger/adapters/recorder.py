"""The one adapter that reaches into eventsourcing's PostgreSQL recorder.

Order commands and recalculation jobs decide under the same table lock the library's
own recorder takes, then insert through the library's own statements, so commit order
equals notification-id order for every writer (projections tailing by id never skip an
event). The library exposes those steps only as protected methods of its recorder; as
the library's own examples extend a recorder by subclassing it, this subclass is the
single place that calls them, and tests/integration/test_recorder_contract.py runs the
library's recorder test cases against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.adapters import sql


class LedgerRecorder(PostgresApplicationRecorder):
    """The library's application recorder, with its locked-insert steps made public."""

    def lock_table(self, curs: Any) -> None:
        """Take the library's EXCLUSIVE lock on its events table in `curs`'s transaction."""
        self._lock_table(curs)

    def insert_in_transaction(self, curs: Any, stored: Sequence[StoredEvent]) -> list[int]:
        """Insert `stored` with the library's statement; their notification ids, in order."""
        self._insert_stored_events(curs, stored)
        ids = self._fetch_ids_after_insert_events(curs, stored)
        assert ids is not None and len(ids) == len(stored)
        return list(ids)

    def next_versions(self, curs: Any, streams: list[UUID]) -> dict[UUID, int]:
        """Next version of each stream; under the table lock the read is race-free."""
        found = {
            r["originator_id"]: r["v"]
            for r in curs.execute(sql.NEXT_VERSIONS, (list(set(streams)),))
        }
        return {s: found.get(s, 0) + 1 for s in streams}
