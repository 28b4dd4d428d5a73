"""Neighbours benchmark: one tenant at full ingest, another tenant's pack station reading.

    python bench/neighbors.py [--seconds 20] [--connections 32] [--idle-seconds 5]
                              [--code DIR]

Starts `pickpack serve` on its embedded PostgreSQL (a fresh data dir). Tenant B
(`demo`) posts scans at full speed: bench/ingest.py's wrk script, wrk pinned to core 0
and the server to core 1, as `python bench/ingest.py` runs them. Meanwhile, in this
process, tenant A (`acme`) packs at a person's pace: a scan to one of its 20 orders
every `--scan-interval` seconds, and in between, one request at a time, the order
being packed (GET /orders/{id}) and its feed from just before the last scan
(GET /events?timestamp=...). Every read is checked to show all of A's acknowledged
scans (the order's packedCount counts them; the feed holds the last eventId); a read
that does not is counted as a read-your-writes failure, and the run exits 1 if there
was any.

Prints p50/p99 of A's order reads and of A's feed reads, first with B idle
(`--idle-seconds`), then under B's ingest, and the ratio of the two p99s under load
(target: at most 1.5). The order reads made right after A's own scan are also shown
apart: they must wait for the views to apply that scan, which the single event log
places behind every event B recorded before it. `--code DIR` runs the server from
another checkout (say a git worktree of an earlier commit) with this benchmark's
client; `--compare DIR --pairs N` alternates N runs of each checkout (ABBA order, so a
drift of the machine's load falls on both) and prints the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import MANAGE, VIEW, mint_token  # noqa: E402
from bench.ingest import SECRET, drive_wrk, find_wrk, start_serve, wait_ready  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from bench.seed import order_document  # noqa: E402

PORT = 18236
TENANT_A = "acme"
ORDERS_A = 20
ENTRIES = 5
STALE = "X-Pickpack-Stale"


@dataclass
class Reads:
    """Tenant A's reads: latencies (seconds) and what they showed."""

    order: list[float] = field(default_factory=list)
    feed: list[float] = field(default_factory=list)
    after_scan: list[float] = field(default_factory=list)  # order reads right after a scan
    missed: int = 0  # reads that did not show all of A's acknowledged scans
    stale: int = 0  # answers carrying X-Pickpack-Stale

    def summary(self, name: str) -> str:
        return (
            f"{name:<18} A order reads {_p(self.order, 50)} / {_p(self.order, 99)} ms, "
            f"A feed reads {_p(self.feed, 50)} / {_p(self.feed, 99)} ms (p50 / p99); "
            f"{len(self.order)} rounds; order reads right after A's own scan "
            f"{_p(self.after_scan, 50)} / {_p(self.after_scan, 99)} ms "
            f"({len(self.after_scan)}); own writes missed {self.missed}, stale {self.stale}"
        )


def _p(samples: list[float], q: int) -> str:
    if len(samples) < 2:
        return "   n/a"
    return f"{statistics.quantiles(samples, n=100)[q - 1] * 1000:6.2f}"


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


class PackStation:
    """Tenant A: a scan every `scan_interval` seconds, and in between, one after the
    other, the order being packed (GET /orders/{id}) and the feed from just before the
    last scan (GET /events?timestamp=...), each checked to show every acknowledged scan."""

    def __init__(self, base: str, scan_interval: float) -> None:
        headers = {
            "Authorization": f"Bearer {mint_token(SECRET, TENANT_A, [VIEW, MANAGE])}",
            "saas-token": "bench",
        }
        self.client = httpx.Client(base_url=base, headers=headers, timeout=30)
        self.scan_interval = scan_interval
        self.packed = [0] * ORDERS_A
        self.n = 0
        self.clock = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
        self.next_scan = 0.0
        self.order = 0
        self.last_event = ""

    def register(self) -> None:
        for o in range(ORDERS_A):
            r = self.client.put(
                f"/pick-pack/{TENANT_A}/orders/a{o}", json=order_document(f"a{o}", ENTRIES)
            )
            assert r.status_code == 200, r.text

    def scan(self) -> None:
        self.order = self.n % ORDERS_A
        self.n += 1
        self.clock += timedelta(milliseconds=1)
        self.last_event = f"a-{self.n}-{uuid.uuid4().hex[:6]}"
        body = {
            "eventId": self.last_event,
            "orderNumber": f"a{self.order}",
            "productId": "p0",
            "unit": "H87",
            "packedAmount": 1,
            "timestamp": self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "site": "main",
        }
        r = self.client.post(f"/pick-pack/{TENANT_A}/events", json=body)
        assert r.status_code == 200, r.text
        self.packed[self.order] += 1

    def round(self, reads: Reads) -> None:
        scanned = time.monotonic() >= self.next_scan
        if scanned:
            self.next_scan = time.monotonic() + self.scan_interval
            self.scan()

        t0 = time.perf_counter()
        r = self.client.get(f"/pick-pack/{TENANT_A}/orders/a{self.order}")
        seconds = time.perf_counter() - t0
        reads.order.append(seconds)
        if scanned:
            reads.after_scan.append(seconds)
        assert r.status_code == 200, r.text
        reads.stale += STALE in r.headers
        entry = next(e for e in r.json()["entries"] if e["productId"] == "p0")
        reads.missed += entry.get("packedCount", 0) != self.packed[self.order]

        before = (self.clock - timedelta(microseconds=500)).isoformat().replace("+00:00", "Z")
        t0 = time.perf_counter()
        r = self.client.get(
            f"/pick-pack/{TENANT_A}/events", params={"timestamp": before, "pageSize": 50}
        )
        reads.feed.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        reads.stale += STALE in r.headers
        reads.missed += self.last_event not in {e["eventId"] for e in r.json()}

    def run_for(self, seconds: float) -> Reads:
        reads = Reads()
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            self.round(reads)
        return reads

    def run_while(self, busy: threading.Thread, warm_up: float) -> Reads:
        time.sleep(warm_up)
        reads = Reads()
        while busy.is_alive():
            self.round(reads)
        return reads


@dataclass
class Run:
    """One run's figures: A's reads with B idle and under B's ingest, and B's rate."""

    code: str
    idle: Reads
    loaded: Reads
    rate: float

    @property
    def ratio(self) -> float:
        return p99(self.loaded.order) / p99(self.loaded.feed)


def run(code: Path, args: argparse.Namespace) -> Run:
    """Serve `code` on a fresh embedded PostgreSQL, drive A alone, then A beside B."""
    env = {
        **os.environ,
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATA_DIR": scratch_dir("pp-neighbors-"),
    }
    env.pop("PICKPACK_DATABASE_URL", None)
    service = start_serve(PORT, env, ["taskset", "-c", "1"], root=code)
    base = f"http://127.0.0.1:{PORT}"
    try:
        wait_ready(base, "/ready")
        name = "this checkout" if code == ROOT else str(code)
        marks = _has_tenant_heads(env["PICKPACK_DATA_DIR"])
        name += f" ({'with' if marks else 'without'} tenant_heads)"
        print(f"serving {name}")
        station = PackStation(base, args.scan_interval)
        station.register()
        station.scan()  # from here on every read must show all of A's scans
        idle = station.run_for(args.idle_seconds)
        print(idle.summary("B idle:"))

        result: dict[str, tuple[float, float, float]] = {}

        def ingest() -> None:
            result["b"] = drive_wrk(base, args.seconds, args.connections, uuid.uuid4().hex[:8])

        busy = threading.Thread(target=ingest)
        busy.start()
        loaded = station.run_while(busy, warm_up=1.0)
        busy.join()
        rate, b50, b99 = result["b"]
        print(
            f"B ingest (wrk, {args.connections} connections, {args.seconds:.0f} s): "
            f"{rate:,.0f} scans/s, p50 {b50 * 1000:.2f} ms, p99 {b99 * 1000:.2f} ms"
        )
        print(loaded.summary("B at full ingest:"))
        outcome = Run(name, idle, loaded, rate)
        print(
            f"A order p99 / A feed p99 under B's load: {outcome.ratio:.2f} "
            f"({'within' if outcome.ratio <= 1.5 else 'over'} the 1.5 target)\n"
        )
        return outcome
    finally:
        service.terminate()
        service.wait(timeout=30)


def medians(runs: list[Run]) -> str:
    def ms(pick: Callable[[Run], list[float]], q: int) -> float:
        return statistics.median(quantile_ms(pick(r), q) for r in runs)

    order50, order99 = ms(lambda r: r.loaded.order, 50), ms(lambda r: r.loaded.order, 99)
    feed50, feed99 = ms(lambda r: r.loaded.feed, 50), ms(lambda r: r.loaded.feed, 99)
    after50 = ms(lambda r: r.loaded.after_scan, 50)
    ratio = statistics.median(r.ratio for r in runs)
    rate = statistics.median(r.rate for r in runs)
    return (
        f"{runs[0].code}, median of {len(runs)} runs under B's ingest: "
        f"A order p50 {order50:.2f} p99 {order99:.2f} ms; A feed p50 {feed50:.2f} "
        f"p99 {feed99:.2f} ms; order p99 / feed p99 {ratio:.2f}; order right after A's "
        f"scan p50 {after50:.2f} ms; B {rate:,.0f} scans/s"
    )


def quantile_ms(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20, help="B's ingest, in seconds")
    parser.add_argument("--connections", type=int, default=32, help="B's wrk connections")
    parser.add_argument("--idle-seconds", type=float, default=5, help="A alone, first")
    parser.add_argument(
        "--scan-interval", type=float, default=0.5, help="A's seconds between its scans"
    )
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to serve from")
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout: alternate runs of the two (ABBA...), then their medians",
    )
    parser.add_argument("--pairs", type=int, default=3, help="runs of each, with --compare")
    args = parser.parse_args()
    if not find_wrk():
        sys.exit("wrk is not installed and could not be installed (apt-get install wrk)")
    # As bench/ingest.py: the server on core 1, wrk (and this client) on core 0.
    os.sched_setaffinity(0, {0})
    codes = [args.code.resolve()]
    if args.compare:
        codes.append(args.compare.resolve())
    runs: dict[Path, list[Run]] = {c: [] for c in codes}
    for i in range(args.pairs if args.compare else 1):
        for code in codes if i % 2 == 0 else codes[::-1]:
            runs[code].append(run(code, args))
    if args.compare:
        for code in codes:
            print(medians(runs[code]))
    missed = sum(r.idle.missed + r.loaded.missed for rs in runs.values() for r in rs)
    print(f"A's reads that missed A's own write: {missed}")
    if missed:
        sys.exit(1)


def _has_tenant_heads(data_dir: str) -> bool:
    """Whether the served code's migrations made tenant_heads (the embedded server's
    socket is in its data directory)."""
    with psycopg.connect(host=str(Path(data_dir) / "pg"), dbname="postgres", user="postgres") as c:
        row = c.execute("SELECT to_regclass('tenant_heads') IS NOT NULL").fetchone()
    return bool(row and row[0])


if __name__ == "__main__":
    main()
