"""Finding a PostgreSQL for the tests, in the order DEVELOPERS.md gives.

1. PICKPACK_TEST_DATABASE_URL, if set;
2. a testcontainers PostgreSQL, if a Docker engine answers;
3. otherwise an embedded PostgreSQL (the pgserver wheel) started for this session.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:
        return False


def with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


class ServerSource:
    """A PostgreSQL server for the session, and how it was found."""

    def __init__(self) -> None:
        self.kind: str
        self.url: str
        self._cleanup: Callable[[], None] = lambda: None
        env_url = os.environ.get("PICKPACK_TEST_DATABASE_URL")
        if env_url:
            self.kind, self.url = "env", env_url
        elif docker_engine_answers():
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:16-alpine", driver=None)
            container.start()
            self.kind, self.url = "testcontainers", container.get_connection_url()
            self._cleanup = container.stop
        else:
            from ledger.adapters.database import start_embedded

            root = Path(tempfile.mkdtemp(prefix="pp-"))
            db = start_embedded(root / "pg")
            self.kind, self.url = "embedded", db.url
            self._cleanup = db.stop

    def close(self) -> None:
        self._cleanup()


class DatabaseFactory:
    """Fresh, migrated databases, copied from a template made once per session."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"pp_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []
        from ledger.adapters.migrate import migrate

        self._admin(f'CREATE DATABASE "{self.template}"')
        migrate(with_dbname(server_url, self.template))

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(statement.encode())

    def empty(self) -> str:
        """A new database with no tables at all (for migration tests)."""
        name = f"pp_t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return with_dbname(self.server_url, name)

    def migrated(self) -> str:
        name = f"pp_t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return with_dbname(self.server_url, name)

    def drop(self, url: str) -> None:
        name = conninfo_to_dict(url)["dbname"]
        with suppress(psycopg.Error):
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in [*self.created, self.template]:
            with suppress(psycopg.Error):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
