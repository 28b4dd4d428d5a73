"""Patroni for the loopback cluster (devtools/ha_cluster.py): which release, where it is
installed, the user the nodes run as, and each node's configuration.

Patroni is 4.1.5 from PyPI, in a virtualenv of its own made from Debian's python3
(PATRONI_VENV), not Debian's 3.0.2: in 3.0.2 a leader writes its leader key to etcd
unconditionally (etcd3's `_update_leader` is a plain put), so a frozen leader that resumes
takes the key back and demotes the node promoted meanwhile, losing what that node
acknowledged. From 4.0 the put is a transaction that succeeds only if the key still names
this node or no longer exists (patroni/dcs/etcd3.py, `_update_leader`); a resumed old
leader finds the key taken and demotes itself.

PostgreSQL refuses to run as root, and CI runs as root: the nodes (etcd and Patroni too)
run as an unprivileged user, `postgres` if it exists (Debian's PostgreSQL package makes
it), else `pickpack-pg`, created here when missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

PATRONI_VERSION = "4.1.5"
PATRONI_VENV = Path(
    os.environ.get("PICKPACK_PATRONI_VENV") or f"/opt/pickpack-patroni-{PATRONI_VERSION}"
)
PG_BIN = Path("/usr/lib/postgresql/15/bin")
ETCD = "/usr/bin/etcd"
HAPROXY = "/usr/sbin/haproxy"
FALLBACK_USER = "pickpack-pg"
SCOPE = "pickpack"
HAPROXY_CONFIG = Path(__file__).resolve().parent.parent / "docker" / "ha" / "haproxy.cfg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unprivileged_user() -> pwd.struct_passwd:
    """The user the nodes run as: `postgres`, else `pickpack-pg` (created if missing);
    when not root, the current user."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", FALLBACK_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
        check=True,
    )
    return pwd.getpwnam(FALLBACK_USER)


def patroni_bin() -> Path:
    """Patroni's executable, installed into its own virtualenv when missing."""
    exe = PATRONI_VENV / "bin" / "patroni"
    if not exe.exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(PATRONI_VENV)], check=True)
        subprocess.run(
            [
                str(PATRONI_VENV / "bin" / "pip"),
                "install",
                "-q",
                f"patroni[psycopg3,etcd3]=={PATRONI_VERSION}",
            ],
            check=True,
        )
    return exe


def get_json(url: str, timeout: float = 1.0) -> tuple[int, Any]:
    """(status, JSON body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        with contextlib.suppress(ValueError):
            return exc.code, json.loads(body or b"null")
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


@dataclass
class Node:
    name: str
    pg_port: int
    rest_port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def processes(self) -> list[int]:
        """Patroni's pid, the postmaster's and every backend's: the whole node."""
        import psutil

        pids = []
        if self.proc is not None and self.proc.poll() is None:
            pids.append(self.proc.pid)
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                pm = psutil.Process(postmaster)
                pids += [postmaster, *(c.pid for c in pm.children(recursive=True))]
        return pids

    def role(self) -> str | None:
        status, body = get_json(f"{self.rest}/patroni")
        return body.get("role") if status and isinstance(body, dict) else None


class NodePorts(Protocol):
    name: str
    pg_port: int
    rest_port: int
    root: Path

    @property
    def data_dir(self) -> Path: ...


def patroni_config(
    node: NodePorts, etcd_port: int, ttl: int, loop_wait: int, retry_timeout: int, strict: bool
) -> dict[str, Any]:
    trust = [
        "local all all trust",
        "host all all 127.0.0.1/32 trust",
        "host replication replicator 127.0.0.1/32 trust",
    ]
    return {
        "scope": SCOPE,
        "namespace": "/pickpack-ha/",
        "name": node.name,
        "restapi": {
            "listen": f"127.0.0.1:{node.rest_port}",
            "connect_address": f"127.0.0.1:{node.rest_port}",
        },
        "etcd3": {"hosts": [f"127.0.0.1:{etcd_port}"]},
        "bootstrap": {
            "dcs": {
                "ttl": ttl,
                "loop_wait": loop_wait,
                "retry_timeout": retry_timeout,
                "maximum_lag_on_failover": 1048576,
                "synchronous_mode": True,
                "synchronous_mode_strict": strict,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {
                        "max_connections": 100,
                        "shared_buffers": "64MB",
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "wal_log_hints": "on",
                        # A standby whose primary changed reconnects within this.
                        "wal_retrieve_retry_interval": "500ms",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node.pg_port}",
            "connect_address": f"127.0.0.1:{node.pg_port}",
            "data_dir": str(node.data_dir),
            "bin_dir": str(PG_BIN),
            "pgpass": str(node.root / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": "postgres"},
                "replication": {"username": "replicator", "password": "replicator"},
                "rewind": {"username": "postgres", "password": "postgres"},
            },
            "parameters": {"unix_socket_directories": str(node.root)},
            "pg_hba": trust,
        },
    }
