"""Fixtures of the reliability tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.ha_cluster import HACluster
from ledger.adapters import connection


@pytest.fixture
def ha_cluster() -> Iterator[HACluster]:
    """etcd, three Patroni-managed PostgreSQL nodes and HAProxy on loopback ports, with
    synchronous replication (devtools/ha_cluster.py). Its directory is under /tmp, not
    pytest's tmp_path: the nodes run as an unprivileged user, who must reach it."""
    root = Path(tempfile.mkdtemp(prefix="pp-ha-"))
    cluster = HACluster(root)
    try:
        yield cluster.start()
    finally:
        cluster.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def default_bounds() -> Iterator[None]:
    """The database bounds are process-wide (a service started in the test sets them):
    put the defaults back for the next test."""
    yield
    connection.configure(connection.CONNECT_TIMEOUT_SECONDS, connection.ROUND_TRIP_TIMEOUT_SECONDS)
