"""A highly available PostgreSQL on loopback: one etcd, three PostgreSQL 15 nodes managed by
Patroni with synchronous replication, and HAProxy in front sending connections to the
leader only. For the failover tests (tests/reliability/test_failover.py), bench/failover.py
and trying it by hand:

    python -m devtools.ha_cluster [--dir DIR]     # runs until Ctrl-C, prints the URLs

The layout is the one docs/how-to/high-availability.md describes for three hosts, on
one machine: each node has its own ports, data directory and Patroni REST API.

Which Patroni and why, and the user the nodes run as: devtools/patroni.py. What is
missing is installed: the Debian packages (etcd-server, haproxy, postgresql-15) by
.ci/run, Patroni's virtualenv (pip, from PyPI) on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.patroni import (
    ETCD,
    HAPROXY,
    HAPROXY_CONFIG,
    PATRONI_VENV,
    Node,
    free_port,
    get_json,
    patroni_bin,
    patroni_config,
    unprivileged_user,
)


@dataclass
class HACluster:
    """etcd, three Patroni nodes and HAProxy, on loopback ports under `root`."""

    root: Path
    ttl: int = 20  # Patroni's minimum; a dead leader is replaced after at most this long
    loop_wait: int = 1
    retry_timeout: int = 5
    # synchronous_mode_strict off: Patroni promotes only the synchronous standby (nothing
    # acknowledged is lost by one failure), and a leader left alone keeps taking writes.
    # On, a leader without a standby answers no write (docs/how-to/high-availability.md).
    strict: bool = False
    nodes: list[Node] = field(default_factory=list)
    etcd_port: int = 0
    haproxy_port: int = 0
    haproxy_stats_port: int = 0
    haproxy_replicas_port: int = 0
    _etcd: subprocess.Popen[bytes] | None = None
    _haproxy: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The service's URL: HAProxy, which sends every connection to the leader."""
        return f"postgresql://postgres@127.0.0.1:{self.haproxy_port}/postgres"

    @property
    def replica_url(self) -> str:
        """HAProxy's `replicas` port: the synchronous standby (PICKPACK_DATABASE_REPLICA_URL)."""
        return f"postgresql://postgres@127.0.0.1:{self.haproxy_replicas_port}/postgres"

    @property
    def multi_host_url(self) -> str:
        """The nodes themselves, libpq choosing the first one that takes writes."""
        hosts = ",".join("127.0.0.1" for _ in self.nodes)
        ports = ",".join(str(n.pg_port) for n in self.nodes)
        return (
            f"postgresql://postgres@/postgres?host={hosts}&port={ports}"
            "&target_session_attrs=read-write"
        )

    def start(self, timeout: float = 120.0) -> HACluster:
        user = unprivileged_user()
        patroni = patroni_bin()
        self.root.mkdir(parents=True, exist_ok=True)
        self._own(self.root, user)
        self.root.chmod(0o755)
        self.etcd_port, peer = free_port(), free_port()
        etcd_dir = self.root / "etcd"
        etcd_dir.mkdir(mode=0o700, exist_ok=True)
        self._own(etcd_dir, user)
        self._etcd = self._spawn(
            [
                ETCD,
                "--name=e0",
                f"--data-dir={etcd_dir}",
                f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=e0=http://127.0.0.1:{peer}",
            ],
            self.root / "etcd.log",
            user,
        )
        self._wait(
            lambda: get_json(f"http://127.0.0.1:{self.etcd_port}/health")[0] == 200, 30, "etcd"
        )
        for i in range(3):
            node = Node(f"n{i}", free_port(), free_port(), self.root / f"n{i}")
            node.root.mkdir(mode=0o700, exist_ok=True)
            self._own(node.root, user)
            config = node.root / "patroni.yml"
            config.write_text(
                json.dumps(
                    patroni_config(
                        node,
                        self.etcd_port,
                        self.ttl,
                        self.loop_wait,
                        self.retry_timeout,
                        self.strict,
                    ),
                    indent=1,
                )
            )
            config.chmod(0o644)
            self.nodes.append(node)
        # One node wins the race to bootstrap; the others clone it once it leads.
        for node in self.nodes:
            node.proc = self._spawn(
                [str(patroni), str(node.root / "patroni.yml")], node.root / "patroni.log", user
            )
        self._wait(lambda: self.healthy(), timeout, "three nodes, one synchronous standby")
        self.haproxy_port, self.haproxy_stats_port = free_port(), free_port()
        self.haproxy_replicas_port = free_port()
        self._start_haproxy()
        return self

    def _start_haproxy(self) -> None:
        """The shipped configuration (docker/ha/haproxy.cfg), its addresses made local."""
        text = HAPROXY_CONFIG.read_text()
        text = text.replace("bind :5000", f"bind 127.0.0.1:{self.haproxy_port}")
        text = text.replace("bind :7000", f"bind 127.0.0.1:{self.haproxy_stats_port}")
        text = text.replace("bind :5001", f"bind 127.0.0.1:{self.haproxy_replicas_port}")
        for i, node in enumerate(self.nodes):
            text = text.replace(
                f"server pg{i + 1} pg{i + 1}:5432 check port 8008",
                f"server pg{i + 1} 127.0.0.1:{node.pg_port} check port {node.rest_port}",
            )
        config = self.root / "haproxy.cfg"
        config.write_text(text)
        self._haproxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)],
            stdout=open(self.root / "haproxy.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait(self._haproxy_routes, 30, "HAProxy routing to the leader")

    def _haproxy_routes(self) -> bool:
        """HAProxy has one server up, the leader. (It starts with every server up until
        its checks say otherwise: connections in the first seconds may reach a standby.)"""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.haproxy_stats_port}/;csv", timeout=1
            ) as answer:
                rows = answer.read().decode().splitlines()
        except OSError:
            return False
        header = rows[0].lstrip("# ").split(",")
        status = header.index("status")
        up = [
            r.split(",")[1]
            for r in rows[1:]
            if r.startswith("primary,pg") and r.split(",")[status] == "UP"
        ]
        leader = self.leader()
        return leader is not None and up == [f"pg{self.nodes.index(leader) + 1}"]

    @staticmethod
    def _own(path: Path, user: pwd.struct_passwd) -> None:
        if os.geteuid() == 0:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _spawn(
        self, argv: list[str], log: Path, user: pwd.struct_passwd
    ) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115  (the child keeps it)
        as_user: dict[str, Any] = {}
        if os.geteuid() == 0:  # PostgreSQL refuses root: the nodes run as `user`
            os.chown(log, user.pw_uid, user.pw_gid)
            as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            **as_user,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8"},
            cwd=self.root,
            start_new_session=True,  # a signal to the tests' process group spares it
        )

    @staticmethod
    def _wait(condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:g} s")
            time.sleep(0.2)

    # -- state --------------------------------------------------------------------------

    def cluster(self) -> dict[str, Any] | None:
        """Patroni's view of the cluster (GET /cluster), from any node that answers."""
        for node in self.nodes:
            status, body = get_json(f"{node.rest}/cluster")
            if status == 200 and isinstance(body, dict):
                return body
        return None

    def leader(self) -> Node | None:
        """The node whose Patroni says it is the primary (GET /primary answers 200)."""
        for node in self.nodes:
            if get_json(f"{node.rest}/primary", timeout=0.5)[0] == 200:
                return node
        return None

    def sync_standbys(self) -> list[str]:
        info = self.cluster() or {}
        return [
            m["name"]
            for m in info.get("members", [])
            if m.get("role") == "sync_standby" and m.get("state") == "streaming"
        ]

    def healthy(self, members: int = 3) -> bool:
        """A leader, and every other member streaming, one of them synchronous."""
        info = self.cluster()
        if not info:
            return False
        roles = [(m.get("role"), m.get("state")) for m in info.get("members", [])]
        leaders = [r for r in roles if r[0] == "leader" and r[1] == "running"]
        streaming = [
            r for r in roles if r[0] in ("replica", "sync_standby") and r[1] == "streaming"
        ]
        sync = [r for r in roles if r[0] == "sync_standby" and r[1] == "streaming"]
        return len(leaders) == 1 and len(streaming) == members - 1 and len(sync) >= 1

    # -- faults -------------------------------------------------------------------------

    def kill_leader(self) -> Node:
        """SIGKILL the leader's Patroni and postmaster at once (a crashed host): the
        backends die with the postmaster; the leader key expires after the ttl."""
        node = self._the_leader()
        pids = [p for p in (node.proc.pid if node.proc else None, node.postmaster_pid()) if p]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.proc is not None:
            node.proc.wait(timeout=10)
        return node

    def kill_postmaster(self) -> Node:
        """SIGKILL the leader's postmaster only (its Patroni lives on)."""
        node = self._the_leader()
        pid = node.postmaster_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return node

    def freeze_leader(self) -> tuple[Node, list[int]]:
        """SIGSTOP every process of the leader (a hung host); returns them for `thaw`."""
        node = self._the_leader()
        pids = node.processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return node, pids

    @staticmethod
    def thaw(pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def restart(self, node: Node) -> None:
        """Start a killed node's Patroni again (it rejoins as a replica)."""
        user = unprivileged_user()
        node.proc = self._spawn(
            [str(patroni_bin()), str(node.root / "patroni.yml")], node.root / "patroni.log", user
        )

    def switchover(self, candidate: str | None = None) -> None:
        """`patronictl switchover` to `candidate` (else any synchronous standby)."""
        leader = self._the_leader()
        argv = [
            str(PATRONI_VENV / "bin" / "patronictl"),
            "-c",
            str(leader.root / "patroni.yml"),
            "switchover",
            "--leader",
            leader.name,
            "--force",
        ]
        if candidate:
            argv += ["--candidate", candidate]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    def _the_leader(self) -> Node:
        node = self.leader()
        assert node is not None, "no leader"
        return node

    def kill(self) -> None:
        """SIGKILL everything at once (a throwaway cluster: no shutdown is worth waiting for)."""
        pids = [pid for node in self.nodes for pid in node.processes()]
        pids += [p.pid for p in (self._haproxy, self._etcd) if p is not None]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in [*(n.proc for n in self.nodes), self._haproxy, self._etcd]:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None:
                self.thaw(node.processes())
                with contextlib.suppress(ProcessLookupError):
                    node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
            pid = node.postmaster_pid()
            if pid is not None:  # a postmaster whose Patroni was killed
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for proc in (self._haproxy, self._etcd):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
                if proc.poll() is None:
                    proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.ha_cluster", description=__doc__)
    parser.add_argument("--dir", type=Path, help="where the nodes live (default: a temp dir)")
    parser.add_argument("--ttl", type=int, default=20)
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="pp-ha-"))
    cluster = HACluster(root, ttl=args.ttl).start()
    print(f"HAProxy (leader only): {cluster.url}")
    print(f"multi-host URL:        {cluster.multi_host_url}")
    print(f"HAProxy (sync standby): {cluster.replica_url}")
    for node in cluster.nodes:
        print(f"{node.name}: {node.url}  Patroni {node.rest}  ({node.role()})")
    print(f"logs and data in {root}; Ctrl-C stops everything")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
