"""Shared fixtures: a real PostgreSQL per test, the service over real HTTP."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.fake_order_service import FakeOrderService
from devtools.harness.pg import DatabaseFactory, ServerSource
from devtools.harness.service import Service, running, start_service
from devtools.harness.support import FAST_RECALCULATION


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ServerSource]:
    source = ServerSource()
    yield source
    source.close()


@pytest.fixture(scope="session")
def databases(pg_server: ServerSource) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server.url)
    yield factory
    factory.close()


@pytest.fixture
def embedded_root() -> Iterator[Path]:
    """A directory for an embedded PostgreSQL of the test's own, outside pytest's tmp_path.

    As root, pgserver runs PostgreSQL as another user and opens the path's prefix to it;
    a concurrent pytest session (another checkout's) resets the mode of pytest's base temp
    directory to 0700 and the server's files become unreachable mid-start (initdb's
    "could not open file .../pg_control: Permission denied"). devtools/harness/faults.py and
    devtools/harness/pg.py keep their servers under the system temp dir for the same reason.
    """
    root = Path(tempfile.mkdtemp(prefix="pp-own-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def db_url(databases: DatabaseFactory) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    url = databases.migrated()
    yield url
    databases.drop(url)


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[Service]:
    server, thread, runtime, url = start_service(db_url, tmp_path)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield Service(url, runtime, client)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.stop()


@pytest.fixture
def fake() -> Iterator[FakeOrderService]:
    """A real Order Service on 127.0.0.1 that records the calculations it receives."""
    f = FakeOrderService().start()
    yield f
    f.stop()


@pytest.fixture
def svc(db_url: str, tmp_path: Path, fake: FakeOrderService) -> Iterator[Service]:
    """The service recalculating against `fake`, at the tests' fast retry pace."""
    env = {**FAST_RECALCULATION, "PICKPACK_ORDER_SERVICE_URL": fake.url}
    with running(db_url, tmp_path, env) as s:
        yield s
