"""From release 0.2.0 on, migrations are expand/contract: the previous release keeps
running beside the new one's schema (tests/reliability/test_rolling.py runs it under
load). A migration that cannot be rolled is refused while another release is connected,
with what to do (docs/how-to/upgrade.md)."""

from __future__ import annotations

import re
from pathlib import Path

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


# A statement of those kinds that the previous release does not notice is declared, with
# why, and with the test that runs the previous release across it:
# `-- rollable despite DROP: ... (tests/...py ...)`.
DECLARED = re.compile(
    r"^-- rollable despite (\w+):(.*?)(?=^-- rollable despite|^[^-]|\Z)", re.M | re.S
)
ROOT = Path(__file__).resolve().parents[2]


def _code(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def test_every_migration_from_this_release_on_only_expands_or_says_it_cannot_roll() -> None:
    for mig in shipped_migrations():
        if mig.version >= FIRST_ROLLING_VERSION and mig.not_rollable is None:
            declared = {m.group(1).upper(): m.group(2) for m in DECLARED.finditer(mig.sql)}
            for why in declared.values():
                proofs = re.findall(r"tests/[\w/]+\.py", why)
                assert proofs, f"{mig.name}: a declared exception names the test that proves it"
                assert all((ROOT / proof).exists() for proof in proofs), (mig.name, proofs)
            for found in CONTRACTING.finditer(_code(mig.sql)):
                kind = found.group(1) or "ALTER COLUMN"
                assert kind.upper() in declared, (
                    f"{mig.name}: {found.group(0)!r} is not expand-only"
                )


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
