"""Fixtures of the reliability tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import patroni
from devtools.ha_cluster import HACluster
from ledger.adapters import connection


def cluster_parts_missing() -> list[str]:
    """What this machine lacks to run the cluster: Debian's etcd, HAProxy and PostgreSQL
    15, and Patroni's virtualenv (made on first use, which needs root for its place in /opt)."""
    missing = [
        name
        for name, path in (
            ("etcd-server", Path(patroni.ETCD)),
            ("haproxy", Path(patroni.HAPROXY)),
            ("postgresql-15", patroni.PG_BIN / "postgres"),
        )
        if not path.exists()
    ]
    if not (patroni.PATRONI_VENV / "bin" / "patroni").exists() and os.geteuid() != 0:
        missing.append(f"Patroni {patroni.PATRONI_VERSION} in {patroni.PATRONI_VENV}")
    return missing


@pytest.fixture
def ha_cluster() -> Iterator[HACluster]:
    """etcd, three Patroni-managed PostgreSQL nodes and HAProxy on loopback ports, with
    synchronous replication (devtools/ha_cluster.py). Its directory is under /tmp, not
    pytest's tmp_path: the nodes run as an unprivileged user, who must reach it.

    A machine without the cluster's parts skips the test and says what to install, except
    under CI (`CI=true`), where a skipped failover test would let a regression pass:
    `.ci/run` installs them, so there a missing part fails the test."""
    missing = cluster_parts_missing()
    if missing:
        message = f"the failover cluster needs {', '.join(missing)} (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
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
