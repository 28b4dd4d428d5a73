"""The migration runner: order, idempotence, checksum refusal, concurrent start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from devtools.harness.pg import DatabaseFactory
from ledger.adapters.migrate import Migration, MigrationError, migrate, pending, shipped_migrations


def recorded(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1])
            for r in conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        ]


def test_shipped_migrations_apply_in_order_once(databases: DatabaseFactory) -> None:
    url = databases.empty()
    shipped = shipped_migrations()
    assert [m.version for m in shipped] == sorted(m.version for m in shipped)
    assert migrate(url) == [m.name for m in shipped]
    assert recorded(url) == [(m.version, m.name) for m in shipped]
    assert migrate(url) == []  # idempotent
    with psycopg.connect(url) as conn:
        assert pending(conn) == []
        assert conn.execute("SELECT to_regclass('stored_events')").fetchone()[0] is not None


def test_a_later_migration_runs_after_the_earlier_ones(databases: DatabaseFactory) -> None:
    url = databases.empty()
    first = Migration(1, "0001_a.sql", "CREATE TABLE a (x int);")
    second = Migration(2, "0002_b.sql", "INSERT INTO a VALUES (1);")
    assert migrate(url, [first]) == ["0001_a.sql"]
    assert migrate(url, [first, second]) == ["0002_b.sql"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT x FROM a").fetchall() == [(1,)]


def test_a_changed_applied_migration_is_refused_naming_the_file(
    databases: DatabaseFactory,
) -> None:
    url = databases.empty()
    migrate(url, [Migration(1, "0001_a.sql", "CREATE TABLE a (x int);")])
    with pytest.raises(MigrationError, match=r"0001_a\.sql"):
        migrate(url, [Migration(1, "0001_a.sql", "CREATE TABLE a (x bigint);")])


def test_a_failing_migration_leaves_nothing_behind(databases: DatabaseFactory) -> None:
    url = databases.empty()
    bad = Migration(1, "0001_bad.sql", "CREATE TABLE a (x int); SELECT no_such_function();")
    with pytest.raises(psycopg.Error):
        migrate(url, [bad])
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('a')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 0


def test_two_processes_migrating_at_once_both_succeed_and_apply_each_file_once(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.empty()
    env = {"PICKPACK_DATABASE_URL": url, "PICKPACK_DATA_DIR": str(tmp_path)}
    import os

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "migrate"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [p.wait(timeout=60) for p in procs]
    assert results == [0, 0], [p.stderr.read() for p in procs if p.stderr]
    assert recorded(url) == [(m.version, m.name) for m in shipped_migrations()]
