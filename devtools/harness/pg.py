"""Finding a PostgreSQL for the tests, in the order DEVELOPERS.md gives.

1. PICKPACK_TEST_DATABASE_URL, if set;
2. a testcontainers PostgreSQL, if a Docker engine answers, from the image
   TESTCONTAINERS_POSTGRES_IMAGE names (default postgres:16-alpine);
3. otherwise, or when that container does not start (no such image and no registry to
   pull it from, say), an embedded PostgreSQL (the pgserver wheel) started for this
   session. A running Docker engine must never be what fails a test session, so a
   container that does not start costs a one-line warning, not the run.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import uuid
import warnings
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)  # type: ignore[attr-defined]
        return bool(client.ping())
    except Exception:
        return False


DEFAULT_POSTGRES_IMAGE = "postgres:16-alpine"


def postgres_image() -> str:
    return os.environ.get("TESTCONTAINERS_POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE


class ContainerFallbackWarning(UserWarning):
    """A Docker engine answered but its PostgreSQL container did not start."""


Started = tuple[str, Callable[[], None]]  # the server's URL, and how to stop it


def start_container(image: str) -> Started:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(image, driver=None)
    try:
        container.start()
    except BaseException:
        # start() leaves a created container behind when it never became ready.
        with suppress(Exception):
            container.stop()
        raise
    return container.get_connection_url(), container.stop


def start_embedded_server() -> Started:
    from ledger.adapters.database import start_embedded

    root = Path(tempfile.mkdtemp(prefix="pp-"))
    db = start_embedded(root / "pg")
    return db.url, db.stop


def with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


class ServerSource:
    """A PostgreSQL server for the session, and how it was found."""

    def __init__(
        self,
        *,
        docker_answers: Callable[[], bool] | None = None,
        container: Callable[[str], Started] | None = None,
        embedded: Callable[[], Started] | None = None,
    ) -> None:
        # Looked up now, not bound at definition, so that a test may patch the module's
        # functions as well as pass its own.
        docker_answers = docker_answers or docker_engine_answers
        container = container or start_container
        embedded = embedded or start_embedded_server
        self.kind: str
        self.url: str
        self._cleanup: Callable[[], None] = lambda: None
        env_url = os.environ.get("PICKPACK_TEST_DATABASE_URL")
        if env_url:
            self.kind, self.url = "env", env_url
            return
        if docker_answers():
            image = postgres_image()
            try:
                self.url, self._cleanup = container(image)
                self.kind = "testcontainers"
                return
            except Exception as exc:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                warnings.warn(
                    f"a Docker engine answers but no PostgreSQL container started from "
                    f"{image} ({type(exc).__name__}: {reason[:200]}); using the embedded "
                    f"PostgreSQL (TESTCONTAINERS_POSTGRES_IMAGE names the image; without "
                    f"a registry set TESTCONTAINERS_RYUK_DISABLED=true too)",
                    ContainerFallbackWarning,
                    stacklevel=2,
                )
        self.url, self._cleanup = embedded()
        self.kind = "embedded"

    def close(self) -> None:
        self._cleanup()


class DatabaseFactory:
    """Fresh, migrated databases, copied from a template made once per session."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"pp_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []
        self._to_drop: queue.Queue[str | None] = queue.Queue()
        self._dropper: threading.Thread | None = None
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
        """Drop a test's database in the background: a DROP DATABASE waits for the server
        to remove its files (0.3 to 2 s seen on two shared cores), which was the largest
        part of every test's teardown. `close` waits for the drops still queued."""
        if self._dropper is None:
            self._dropper = threading.Thread(target=self._drop_queued, daemon=True)
            self._dropper.start()
        self._to_drop.put(str(conninfo_to_dict(url)["dbname"]))

    def _drop_queued(self) -> None:
        while (name := self._to_drop.get()) is not None:
            with suppress(psycopg.Error):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._dropper is not None:
            self._to_drop.put(None)
            self._dropper.join()
        for name in [*self.created, self.template]:
            with suppress(psycopg.Error):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
