"""From release 0.2.0 on, migrations are expand/contract: the previous release keeps
running beside the new one's schema (tests/reliability/test_rolling.py runs it under
load). A migration that cannot be rolled is refused while another release is connected,
with what to do (docs/how-to/upgrade.md)."""

from __future__ import annotations

import re

import psycopg
import pytest

from ledger.adapters.migrate import (
    FIRST_ROLLING_VERSION,
    Migration,
    OtherReleaseConnected,
    migrate,
    shipped_migrations,
)
from ledger.version import service_version

# Statements that take away or change what a running previous release uses.
CONTRACTING = re.compile(
    r"\b(DROP|RENAME|TRUNCATE|DELETE\s+FROM|UPDATE)\b|\bALTER\s+COLUMN\b.*\b(TYPE|SET\s+NOT\s+NULL)\b",
    re.IGNORECASE | re.DOTALL,
)

BLOCKING = Migration(
    9999,
    "9999_contract.sql",
    "-- not rollable: drops a column the previous release reads\nCREATE TABLE contract_9999 ();",
)


def _code(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def test_every_migration_from_this_release_on_only_expands_or_says_it_cannot_roll() -> None:
    for mig in shipped_migrations():
        if mig.version >= FIRST_ROLLING_VERSION and mig.not_rollable is None:
            found = CONTRACTING.search(_code(mig.sql))
            assert found is None, f"{mig.name}: {found.group(0)!r} is not expand-only"


def test_a_migration_that_cannot_roll_waits_until_no_other_release_is_connected(
    db_url: str,
) -> None:
    migrate(db_url)
    shipped = shipped_migrations()
    # A process of the release before 0.2.0 names its role without a version.
    with (
        psycopg.connect(db_url, application_name="pickpack-api"),
        pytest.raises(OtherReleaseConnected) as refused,
    ):
        migrate(db_url, [*shipped, BLOCKING])
    message = str(refused.value)
    assert "9999_contract.sql" in message and "drops a column" in message
    assert "release before 0.2.0" in message and "pickpack-api" in message
    assert "stop every process of that release" in message
    # This release's own processes do not block it.
    with psycopg.connect(db_url, application_name=f"pickpack-api/{service_version()}"):
        assert migrate(db_url, [*shipped, BLOCKING]) == ["9999_contract.sql"]


def test_an_expanding_migration_is_applied_beside_the_previous_release(db_url: str) -> None:
    migrate(db_url)
    expanding = Migration(9998, "9998_expand.sql", "CREATE TABLE expand_9998 ();")
    with psycopg.connect(db_url, application_name="pickpack-writer"):
        assert migrate(db_url, [*shipped_migrations(), expanding]) == ["9998_expand.sql"]
