"""A primary and a hot standby streaming from it, on loopback ports: for the replica-read
test (tests/reliability/test_replica_reads.py) and benches (bench/replica_reads.py,
bench/failover.py's synchronous-replication cost).

PostgreSQL 15 from Debian (devtools/patroni.py's PG_BIN, which .ci/run installs). Both
servers run as an unprivileged user (PostgreSQL refuses root; devtools/patroni.py picks
the user) in a directory of their own under /tmp, which that user owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from devtools.patroni import PG_BIN, free_port, unprivileged_user


def run_as(
    user: pwd.struct_passwd, argv: list[str], **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[], check=True,
        capture_output=True, **kw,
    )  # fmt: skip


@dataclass
class Server:
    """One PostgreSQL on a loopback port, its data in `data`, its log beside it."""

    data: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, user: pwd.struct_passwd, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data}",
             *extra],
            user=user.pw_uid, group=user.pw_gid, extra_groups=[],
            stdout=open(self.data.parent / f"{self.data.name}.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(psycopg.Error):
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"{self.data} did not start (see {self.data}.log)")
            time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), waited for."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)

    def pids(self) -> list[int]:
        """The postmaster and its children (for /proc readings)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError):
            return [self.proc.pid, *(int(p) for p in children.read_text().split())]
        return [self.proc.pid]


def missing() -> str | None:
    """What this machine lacks to run the pair, or None."""
    if not (PG_BIN / "postgres").exists():
        return "postgresql-15 (Debian's package; .ci/run installs it)"
    return None


@dataclass
class StreamingPair:
    """A primary (wal_level replica) and a hot standby streaming from it as `standby1`."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pp-pair-")))
    primary: Server = field(init=False)
    standby: Server = field(init=False)
    user: pwd.struct_passwd = field(default_factory=unprivileged_user)

    def __post_init__(self) -> None:
        self.primary = Server(self.root / "primary", free_port())
        self.standby = Server(self.root / "standby", free_port())

    def start(self, *primary_settings: str) -> StreamingPair:
        """initdb, the primary, a base backup, the standby; returns once it streams."""
        user = self.user
        os.chown(self.root, user.pw_uid, user.pw_gid)
        run_as(user, [str(PG_BIN / "initdb"), "-D", str(self.primary.data), "-U", "postgres",
                      "-A", "trust", "--locale=C", "-E", "UTF8", "--no-sync"])  # fmt: skip
        with (self.primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self.primary.start(
            user, "-c", "wal_level=replica", "-c", "max_wal_senders=5", "-c", "fsync=off",
            *primary_settings,
        )  # fmt: skip
        run_as(user, [str(PG_BIN / "pg_basebackup"), "-D", str(self.standby.data), "-h",
                      "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                      "-X", "stream", "-c", "fast", "--no-sync"])  # fmt: skip
        self.start_standby()
        return self

    def start_standby(self, primary_port: int | None = None) -> None:
        """The standby (again), streaming from the primary (or whatever is on
        `primary_port`, a relay say); returns once it streams."""
        port = primary_port or self.primary.port
        conninfo = f"host=127.0.0.1 port={port} user=postgres application_name=standby1"
        (self.standby.data / "standby.signal").touch()
        self.standby.start(
            self.user, "-c", f"primary_conninfo={conninfo}", "-c", "hot_standby=on",
            "-c", "fsync=off", "-c", "wal_retrieve_retry_interval=200ms",
        )  # fmt: skip
        with psycopg.connect(self.primary.url, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while conn.execute(
                "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'"
            ).fetchone() is None:  # fmt: skip
                if time.monotonic() > deadline:
                    raise TimeoutError("the standby does not stream")
                time.sleep(0.05)

    def caught_up(self, timeout: float = 10.0) -> None:
        """Wait until the standby has replayed everything the primary has written."""
        with psycopg.connect(self.primary.url, autocommit=True) as conn:
            lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert lsn is not None
        with psycopg.connect(self.standby.url, autocommit=True) as conn:
            deadline = time.monotonic() + timeout
            while conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn[0],)
            ).fetchone() != (True,):  # fmt: skip
                if time.monotonic() > deadline:
                    raise TimeoutError("the standby did not catch up")
                time.sleep(0.02)

    def stop(self) -> None:
        self.standby.stop()
        self.primary.stop()
        shutil.rmtree(self.root, ignore_errors=True)
