"""Where the database comes from: the configured URL first, else the embedded server."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg
import pytest

from api.auth import local_secret
from devtools.harness import pg
from ledger.adapters.database import provision
from ledger.config import Settings


def test_a_configured_url_is_used_as_is() -> None:
    settings = Settings.from_env({"PICKPACK_DATABASE_URL": "postgresql://x@db.example/pp"})
    database = provision(settings)
    assert database.url == "postgresql://x@db.example/pp"
    assert database.embedded is None


def test_without_a_url_an_embedded_server_starts_in_the_data_dir_and_keeps_data(
    embedded_root: Path,
) -> None:
    settings = Settings.from_env({"PICKPACK_DATA_DIR": str(embedded_root / "data")})
    database = provision(settings)
    try:
        assert (embedded_root / "data" / "pg" / "PG_VERSION").exists()
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    finally:
        database.stop()
    again = provision(settings)
    try:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
    finally:
        again.stop()


def test_defaults_follow_the_design() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path("./.pickpack").resolve()
    assert settings.order_service_url is None


def test_the_dev_secret_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = local_secret(tmp_path)
    assert first and local_secret(tmp_path) == first
    mode = stat.S_IMODE(os.stat(tmp_path / "jwt-secret").st_mode)
    assert mode == 0o600


def test_test_databases_come_from_the_env_url_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICKPACK_TEST_DATABASE_URL", "postgresql://u@h/d")
    monkeypatch.setattr(pg, "docker_engine_answers", lambda: pytest.fail("docker was asked"))
    source = pg.ServerSource()
    assert (source.kind, source.url) == ("env", "postgresql://u@h/d")


def test_then_testcontainers_when_docker_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PICKPACK_TEST_DATABASE_URL", raising=False)
    started = []

    class FakeContainer:
        def __init__(self, image: str, driver: object = None) -> None:
            started.append(image)

        def start(self) -> None: ...
        def stop(self) -> None: ...
        def get_connection_url(self) -> str:
            return "postgresql://test@container/test"

    import testcontainers.postgres

    monkeypatch.setattr(pg, "docker_engine_answers", lambda: True)
    monkeypatch.setattr(testcontainers.postgres, "PostgresContainer", FakeContainer)
    source = pg.ServerSource()
    assert source.kind == "testcontainers" and started


def test_else_an_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PICKPACK_TEST_DATABASE_URL", raising=False)
    monkeypatch.setattr(pg, "docker_engine_answers", lambda: False)
    source = pg.ServerSource()
    try:
        assert source.kind == "embedded"
        with psycopg.connect(source.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        source.close()
