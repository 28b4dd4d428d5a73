"""`pickpack database move` refuses a source another client uses, but not one whose
client has just left: a connection closed a moment before (the command's own migration
step, a `serve` just stopped) stays listed in pg_stat_activity until its backend exits,
which on a loaded machine took long enough to refuse the move (the suite's
test_database_move failed so under three workers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from devtools.harness.pg import DatabaseFactory
from ledger.adapters import move as move_module
from ledger.adapters.move import MoveError, move


@pytest.fixture
def target(databases: DatabaseFactory) -> Iterator[str]:
    url = databases.empty()
    yield url
    databases.drop(url)


def test_a_client_leaving_during_the_grace_does_not_refuse_the_move(
    db_url: str, target: str
) -> None:
    leaving = psycopg.connect(db_url, application_name="leaving soon")
    closer = threading.Timer(1.0, leaving.close)
    closer.start()
    try:
        checks = move(db_url, target)
    finally:
        closer.cancel()
        leaving.close()
    assert checks, "the move copied and checked the tables"


def test_a_client_that_stays_refuses_the_move_naming_it(
    db_url: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(move_module, "IN_USE_GRACE_SECONDS", 0.5)
    with (
        psycopg.connect(db_url, application_name="pack station 3"),
        pytest.raises(MoveError, match="in use by pack station 3"),
    ):
        move(db_url, target)
