"""The library's own recorder test cases, run against our recorder subclass.

ledger.adapters.recorder.LedgerRecorder is the one place that calls the library's
protected recorder methods. These cases (eventsourcing/tests/persistence.py) pin the
behaviour we rely on: inserts, selects, notification ids without gaps or interleaving
under concurrent writers. They run on each library version the pin allows, so a
version that changes what the subclass depends on fails here. The performance and
throughput cases are left out (timings, not contracts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from devtools.harness.pg import DatabaseFactory
from ledger.adapters.pool import make_datastore
from ledger.adapters.recorder import LedgerRecorder


class _OnFreshDatabase:
    """Each test case on a fresh, migrated database; the recorder over our pool."""

    url: str
    _stores: list[Any]

    @pytest.fixture(autouse=True)
    def _database(self, databases: DatabaseFactory) -> Iterator[None]:
        self.url = databases.migrated()
        self._stores = []
        yield
        for datastore in self._stores:
            datastore.close()
        databases.drop(self.url)

    def create_recorder(self) -> LedgerRecorder:
        datastore = make_datastore(self.url)
        self._stores.append(datastore)
        return LedgerRecorder(datastore)


class TestLedgerRecorder(_OnFreshDatabase, ApplicationRecorderTestCase[LedgerRecorder]):
    def test_performance(self) -> None:
        pytest.skip("a timing, not a contract")

    def test_concurrent_throughput(self) -> None:
        pytest.skip("a timing, not a contract")


class TestLedgerRecorderNonInterleaving(_OnFreshDatabase, NonInterleavingNotificationIDsBaseCase):
    insert_num = 200


class TestLockedInsert(_OnFreshDatabase):
    """Our public steps: lock, next versions and insert inside one transaction."""

    def test_insert_in_transaction_returns_the_notification_ids_in_order(self) -> None:
        recorder = self.create_recorder()
        stream = uuid4()
        events = [
            StoredEvent(originator_id=stream, originator_version=v, topic="t", state=b"{}")
            for v in (1, 2, 3)
        ]
        with recorder.datastore.transaction(commit=True) as curs:
            recorder.lock_table(curs)
            assert recorder.next_versions(curs, [stream]) == {stream: 1}
            ids = recorder.insert_in_transaction(curs, events)
            assert recorder.next_versions(curs, [stream]) == {stream: 4}
        assert ids == sorted(ids) and len(set(ids)) == 3
        selected = recorder.select_events(stream)
        assert [e.originator_version for e in selected] == [1, 2, 3]
        assert recorder.max_notification_id() == ids[-1]
