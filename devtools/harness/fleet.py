"""Replicas behind HAProxy, for tests/reliability/test_rolling.py and bench/rolling.py.

- :class:`Balancer`: Debian's HAProxy run with the shipped configuration
  (docker/haproxy.cfg), its replicas' addresses given through the environment, and the
  state of each replica read from its status page;
- :func:`extract_release`: another release's source tree, from this checkout's history
  (`git archive`), to run beside this one with the same interpreter;
- :class:`Load`: scanners posting distinct scans through the balancer without retrying,
  so every error they see is a failed request, with each request's latency;
- :func:`restart`: one replica stopped the way a supervisor stops it (SIGTERM) and started
  again, from this tree or another, waiting until the balancer sends to it again.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import statistics
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devtools.harness.faults import ROOT, ServeProcess, headers
from devtools.harness.support import numbered_scan, scan_body

LB_CONFIG = ROOT / "docker" / "haproxy.cfg"
# The release before this one: until a tagged 0.2.0 exists, this commit of main.
PREVIOUS_RELEASE = "1460da6"


def replica(
    database_url: str, port: int, data_dir: Path, env: dict[str, str], root: Path = ROOT
) -> ServeProcess:
    """`pickpack serve` from the source tree `root` (another release's, or this one),
    with this interpreter and its installed dependencies."""
    proc = ServeProcess(database_url, port, data_dir, env=env)
    if root != ROOT:
        proc.root = root
        proc.env["PYTHONPATH"] = str(root)  # that tree's packages, not this checkout's
    return proc


def haproxy() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )


def extract_release(commit: str, dest: Path) -> Path:
    """`commit`'s tree under `dest` (LookupError when this checkout lacks the commit,
    as a shallow clone does)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
    )
    if found.returncode != 0:
        raise LookupError(f"commit {commit} is not in this checkout's history")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


class Balancer:
    """HAProxy on `port` in front of `replicas` (server name -> port on 127.0.0.1)."""

    def __init__(self, port: int, stats_port: int, replicas: dict[str, int], log: Path) -> None:
        binary = haproxy()
        if binary is None:
            raise LookupError("haproxy is not installed (Debian: apt-get install haproxy)")
        self.binary = binary
        self.url = f"http://127.0.0.1:{port}"
        self.stats = f"http://127.0.0.1:{stats_port}/stats;csv"
        self.env = {
            **os.environ,
            "LB_BIND": f"127.0.0.1:{port}",
            "LB_STATS_BIND": f"127.0.0.1:{stats_port}",
            **{f"REPLICA_{n.upper()}": f"127.0.0.1:{p}" for n, p in replicas.items()},
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-db", "-f", str(LB_CONFIG)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.states()
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"haproxy did not start: {self.log.read_text()}") from None
                time.sleep(0.05)

    def states(self) -> dict[str, str]:
        """Each replica's state as HAProxy sees it: UP, DOWN, "UP 1/2" (going down)..."""
        text = httpx.get(self.stats, timeout=5).text.lstrip("# ")
        return {
            row["svname"]: row["status"]
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "replicas" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def answered(self) -> dict[str, int]:
        """How many 2xx answers each replica has given through the balancer."""
        text = httpx.get(self.stats, timeout=5).text.lstrip("# ")
        return {
            row["svname"]: int(row["hrsp_2xx"] or 0)
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "replicas" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait(self, name: str, status: str, timeout: float = 60) -> float:
        started = time.monotonic()
        while (seen := self.states().get(name)) != status:
            assert time.monotonic() - started < timeout, f"{name} is {seen}, not {status}"
            time.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)


def restart(
    running: ServeProcess, balancer: Balancer, name: str, root: Path | None = None
) -> ServeProcess:
    """SIGTERM `replica`, wait for it to exit, start it again (from `root`, another tree,
    when given) and wait until the balancer sends it requests again. The old process must
    exit 0: a stop that is not clean is a failure."""
    assert running.proc is not None
    running.proc.send_signal(signal.SIGTERM)
    code = running.proc.wait(timeout=60)
    assert code == 0, f"{name} exited {code}: {running.log.read_text()[-2000:]}"
    again = replica(
        running.database_url,
        running.port,
        running.data_dir,
        {k: v for k, v in running.env.items() if k.startswith("PICKPACK_")},
        root=root or running.root,
    )
    again.start()
    balancer.wait(name, "UP")
    return again


@dataclass
class Outcome:
    event_id: str
    started: float
    seconds: float
    status: int | None
    error: str | None


@dataclass
class Load:
    """`clients` scanners posting distinct scans to `url` until stopped; no retries."""

    url: str
    clients: int = 8
    prefix: str = "r"
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _scanner(self, number: int) -> None:
        hdrs = headers()
        i = 0
        with httpx.Client(base_url=self.url, headers=hdrs, timeout=30) as http:
            while not self._stop.is_set():
                body = scan_body(numbered_scan(i, prefix=f"{self.prefix}{number}-", orders=200))
                i += 1
                started = time.monotonic()
                status: int | None = None
                error: str | None = None
                try:
                    status = http.post("/pick-pack/demo/events", json=body).status_code
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                outcome = Outcome(
                    body["eventId"], started, time.monotonic() - started, status, error
                )
                with self._lock:
                    self.outcomes.append(outcome)

    def start(self) -> Load:
        for n in range(self.clients):
            thread = threading.Thread(target=self._scanner, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return list(self.outcomes)


@dataclass(frozen=True)
class Summary:
    requests: int
    failed: int
    p50_ms: float
    p99_ms: float
    acked: int
    stored: int  # of the acknowledged scans, how many the store holds
    seconds: float

    @property
    def lost(self) -> int:
        return self.acked - self.stored

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def summarize(outcomes: list[Outcome], stored_ids: set[str], seconds: float) -> Summary:
    latencies = sorted(o.seconds * 1000 for o in outcomes if o.status == 200)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [0.0] * 99
    acked = {o.event_id for o in outcomes if o.status == 200}
    return Summary(
        requests=len(outcomes),
        failed=sum(1 for o in outcomes if o.status != 200),
        p50_ms=quantiles[49],
        p99_ms=quantiles[98],
        acked=len(acked),
        stored=len(acked & stored_ids),
        seconds=seconds,
    )


def failures(outcomes: list[Outcome]) -> list[str]:
    return [f"{o.event_id}: {o.status or o.error}" for o in outcomes if o.status != 200]
