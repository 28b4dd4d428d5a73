"""Fault-injection helpers shared by the reliability tests and bench/chaos.py.

- :class:`OwnPostgres`: an embedded PostgreSQL a test owns, so it may crash and restart it
  (never the shared server);
- :class:`ServeProcess`: a real `pickpack serve` child process that can be SIGKILLed;
- :func:`scan`: scanners posting packing events over HTTP the way real ones do: each
  retries, with the same eventId and body, until it gets an answer that is not a
  connection error or a 5xx;
- readers of what the store holds, for comparing with the fold (devtools/harness/fold.py).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from devtools.harness.service import SECRET
from devtools.harness.support import numbered_scan, packing_event, scan_body
from ledger.adapters.compression import state_json
from ledger.adapters.database import Database, start_embedded
from ledger.domain.packing import PackingEvent
from ledger.services.signing import MANAGE, VIEW, mint_token
from projections.registry import PROJECTIONS

ROOT = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "cli.main", "serve"]


def headers(tenant: str = "demo") -> dict[str, str]:
    token = mint_token(SECRET, tenant, [VIEW, MANAGE], subject="scanner", ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}", "saas-token": "saas-1"}


# -- a PostgreSQL of the test's own ----------------------------------------------------------


class OwnPostgres:
    """An embedded PostgreSQL that the test may crash and start again.

    Its data lives in a directory of its own under the system temp dir, not under
    pytest's tmp_path: pgserver runs PostgreSQL as another user when started as root and
    opens the path's prefix to it, and a concurrent pytest session resets the mode of
    its own base temp directory (as devtools/harness/pg.py does for the session server).
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pp-own-"))
        self.pgdata = self.root / "pg"
        self.db: Database = start_embedded(self.pgdata)
        self.url = self.db.url

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: every backend dies at once, no checkpoint (a crash)."""
        from pgserver import _commands

        server = self.db.embedded
        postmaster = server.get_postmaster_info().process  # a psutil.Process
        _commands.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "immediate", "stop"], pgdata=self.pgdata, user=server.system_user
        )
        with contextlib.suppress(Exception):
            postmaster.wait(timeout=10)
        self.db.stop()  # forget the handle (its postmaster is gone: nothing to stop)

    def start(self) -> None:
        """Start it again on the same data directory and socket (crash recovery runs)."""
        self.db = start_embedded(self.pgdata)
        assert self.db.url == self.url, "the restarted server must answer at the same address"

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop(self) -> None:
        self.db.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- `pickpack serve` as a child process -------------------------------------------------------


class ServeProcess:
    """`pickpack serve` on `port` over `database_url`; its output goes to `log`. It runs
    from `root`, this checkout (devtools/harness/fleet.py runs other releases' trees)."""

    def __init__(
        self, database_url: str, port: int, data_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.root = ROOT
        self.database_url = database_url
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")},
            "PICKPACK_DATABASE_URL": database_url,
            "PICKPACK_DATA_DIR": str(data_dir),
            "PICKPACK_JWT_SECRET": SECRET,
            # No balancer to drain for: SIGTERM stops at once (tests of the drain set it).
            "PICKPACK_DRAIN_SECONDS": "0",
            **(env or {}),
        }
        self.log = data_dir / f"serve-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> float:
        """Start it and wait until /ready answers 200; returns the seconds that took."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*SERVE, "--port", str(self.port), "--log-level", "warning"],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve not ready within {timeout}s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight requests get no answer."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# -- scanners --------------------------------------------------------------------------------


def make_events(count: int, prefix: str = "e", orders: int = 40) -> list[dict[str, Any]]:
    """`count` distinct packing events (HTTP bodies) over `orders` orders and 7 products."""
    return [scan_body(numbered_scan(i, prefix=prefix, orders=orders)) for i in range(count)]


@dataclass
class ScanReport:
    """What the scanners saw."""

    acked: dict[str, int] = field(default_factory=dict)  # eventId -> final status (2xx/4xx)
    attempts: int = 0
    retries: int = 0
    connection_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    answered_503: set[str] = field(default_factory=set)  # eventIds that once got a 503

    @property
    def ok(self) -> set[str]:
        return {e for e, status in self.acked.items() if status == 200}


def scan(
    bodies: Sequence[dict[str, Any]],
    urls: Sequence[str],
    clients: int = 16,
    report: ScanReport | None = None,
    deadline: float = 120.0,
    on_answer: Callable[[ScanReport], Any] | None = None,
    failover: bool = False,
) -> ScanReport:
    """Post every body, `clients` at a time, spread over `urls`; retry each until answered.

    A connection error, a timeout or a 5xx is retried after a short pause, with the same
    eventId and body, as a scanner would after a lost answer: against the same URL, or
    with `failover` against the next one (a load balancer taking a dead replica out).
    Anything else is final and is recorded. `on_answer` runs after each final answer.
    Scanners are threads with a blocking client each (httpx's async client re-tries a
    failing `import sniffio` on every request, which made it the bottleneck here).
    """
    report = report or ScanReport()
    pending: queue.SimpleQueue[tuple[int, dict[str, Any]]] = queue.SimpleQueue()
    for i, body in enumerate(bodies):
        pending.put((i, body))
    give_up = time.monotonic() + deadline
    hdrs = headers()
    lock = threading.Lock()
    failures: list[BaseException] = []

    def post(http: httpx.Client, target: int, body: dict[str, Any]) -> None:
        while True:
            url = f"{urls[target % len(urls)]}/pick-pack/demo/events"
            assert time.monotonic() < give_up, "the scanners could not finish in time"
            with lock:
                report.attempts += 1
            try:
                answer = http.post(url, json=body, headers=hdrs)
            except httpx.TransportError:
                with lock:
                    report.connection_errors += 1
                    report.retries += 1
                target += 1 if failover else 0
                time.sleep(0.05)
                continue
            with lock:
                report.statuses[answer.status_code] += 1
                if answer.status_code >= 500:
                    if answer.status_code == 503:
                        report.answered_503.add(body["eventId"])
                    report.retries += 1
                else:
                    report.acked[body["eventId"]] = answer.status_code
            if answer.status_code >= 500:
                time.sleep(0.05)
                continue
            if on_answer is not None:
                on_answer(report)
            return

    def client() -> None:
        try:
            with httpx.Client(timeout=10) as http:
                while True:
                    try:
                        i, body = pending.get_nowait()
                    except queue.Empty:
                        return
                    post(http, i, body)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return report


# -- two processes ------------------------------------------------------------------------


class LockWatcher:
    """Samples pg_locks every ~2 ms: which backends hold which advisory locks, and how
    many hold one key at once. Projection steps hold theirs for a transaction only, so
    samples catch a fraction of the holds, enough to see who takes turns."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples = 0
        self.holders: dict[int, set[int]] = {}  # key -> backend pids seen holding it
        self.most_at_once: Counter[int] = Counter()  # key -> most holders in one sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT ((classid::bigint << 32) | objid::bigint), pid FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                ).fetchall()
                self.samples += 1
                now: dict[int, set[int]] = {}
                for raw, pid in rows:
                    key = raw - (1 << 64) if raw >= (1 << 63) else raw  # as a signed bigint
                    now.setdefault(key, set()).add(pid)
                    self.holders.setdefault(key, set()).add(pid)
                for key, pids in now.items():
                    self.most_at_once[key] = max(self.most_at_once[key], len(pids))
                self._stop.wait(0.002)  # leave the two cores to the service


def order_document(order_id: str) -> dict[str, Any]:
    """An order with one entry for each of make_events' products, p0..p6."""
    return {
        "id": order_id,
        "siteCode": "main",
        "entries": [
            {"entryId": f"e{p}", "productId": f"p{p}", "totalCount": 100000, "orderUnit": "H87"}
            for p in range(7)
        ],
    }


def outbox(url: str) -> list[tuple[str, str, int]]:
    """(order_id, status, attempts) of every recalculation request queued."""
    with psycopg.connect(url) as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute("SELECT order_id, status, attempts FROM recalculation_outbox")
        ]


# -- what the store holds --------------------------------------------------------------------


def stored_packing_events(database_url: str) -> list[PackingEvent]:
    """Every packing event in the library's stored_events table, decoded, in store order."""
    with psycopg.connect(database_url) as conn, conn.cursor(binary=True) as curs:
        rows = curs.execute(
            "SELECT state FROM stored_events WHERE topic LIKE %s ORDER BY notification_id",
            ("%PackingEventRecorded",),
        ).fetchall()
    out = []
    for (state,) in rows:
        d = orjson.loads(state_json(state))
        out.append(packing_event(d["event_id"], **{name: d[name] for name in _FOLDED}))
    return out


# What the fold compares of a stored scan (the bodies the scanners here post carry no more).
_FOLDED = (
    "tenant",
    "order_id",
    "product_id",
    "unit",
    "event_time",
    "site",
    "picked",
    "packed",
    "canceled",
)


def indexed_event_ids(database_url: str) -> Counter[str]:
    """eventIds in the ledger's packing_events index (tenant demo), with their counts."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT event_id FROM packing_events WHERE tenant = 'demo'")
        return Counter(r[0] for r in rows)


def store_head(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM stored_events")
        return int(row.fetchone()[0])  # type: ignore[index]


def wait_caught_up(database_url: str, timeout: float = 30.0) -> float:
    """Wait until every projection has applied the store's head; returns the seconds."""
    started = time.monotonic()
    head = store_head(database_url)
    while True:
        with psycopg.connect(database_url) as conn:
            behind = conn.execute(
                "SELECT count(*) FROM unnest(%s::text[]) AS p(name) "
                "LEFT JOIN notification_tracking t ON t.application_name = p.name "
                "WHERE coalesce(t.notification_id, 0) < %s",
                (list(PROJECTIONS), head),
            ).fetchone()
        if behind is not None and behind[0] == 0:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, "the projections did not catch up"
        time.sleep(0.05)
