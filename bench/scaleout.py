"""Scale out on one machine: one `serve`, `serve --workers 2`, two `serve` processes.

    python bench/scaleout.py [--seconds 15] [--connections 32] [--database-url URL]
                             [--checked 2000]

Each configuration gets a fresh database of its own (migrated, empty) and the same
load: wrk (bench/ingest.lua: POST /pick-pack/demo/events, a unique eventId per request)
for `--seconds` with `--connections` connections. Two processes get one wrk each, on
their own port, with half the connections; their rates add up. Nothing is pinned: the
processes, PostgreSQL and wrk share the machine's cores, as they would on one host.

Correctness, per configuration, after the load:
- a checked pass: `--checked` scans from 8 `http.client` threads spread over the
  configuration's ports, each eventId remembered when its 200 came back; lost = those
  acknowledged but not in the store, duplicated = eventIds stored more than once;
- wrk's scans: the store holds at least as many as wrk counted answered with 200
  (a request cut off by the end of the run may be stored, unanswered);
- one runner per projection: once every process's runner is idle, the views' sums equal
  the store's (each scan packs 1: line_totals' packed total = the number of scans, and
  order_status agrees), so no runner applied an event twice or skipped one; and the
  runners' advisory locks, sampled every ~10 ms during the load, were never held by
  more than one backend per projection (PostgreSQL guarantees it: the sample shows the
  runners did contend for them).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import MANAGE, VIEW, mint_token  # noqa: E402
from bench.ingest import SECRET, wait_ready  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from ledger.adapters.compression import state_json  # noqa: E402
from ledger.adapters.migrate import migrate  # noqa: E402
from projections.base import lock_key  # noqa: E402

PORT = 18240
DB = "pp_scaleout"
CONFIGS: dict[str, tuple[int, int]] = {  # name: (processes, workers per process)
    "one process": (1, 1),
    "serve --workers 2": (1, 2),
    "two processes": (2, 1),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--checked", type=int, default=2000)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    results = []
    for name in args.configs.split(","):
        processes, workers = CONFIGS[name]
        print(f"{name}: load average {os.getloadavg()[0]:.1f}", flush=True)
        results.append((name, run(args, processes, workers)))
    base = results[0][1]["rate"]
    print(
        f"{'configuration':<20} {'req/s':>8} {'vs one':>7} {'p50':>8} {'p99':>8} "
        f"{'lost':>5} {'dup':>4} {'views=store':>11} {'lock holders':>12} {'load':>5}"
    )
    for name, r in results:
        print(
            f"{name:<20} {r['rate']:>8,.0f} {r['rate'] / base:>6.2f}x {r['p50'] * 1000:>6.1f}ms "
            f"{r['p99'] * 1000:>6.1f}ms {r['lost']:>5} {r['duplicated']:>4} "
            f"{r['views_match']!s:>11} {r['max_holders']:>12} {r['load']:>5}"
        )


def run(args: argparse.Namespace, processes: int, workers: int) -> dict[str, Any]:
    url = fresh_database(args.database_url)
    env = {
        **os.environ,
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATABASE_URL": url,
        "PICKPACK_DATA_DIR": scratch_dir("pp-scaleout-data-"),
    }
    ports = [PORT + i for i in range(processes)]
    services = [serve(port, workers, env) for port in ports]
    try:
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}", "/ready")
        run_id = "w" + uuid.uuid4().hex[:8]
        holders = LockSampler(url)
        with holders:
            loads = wrk_on(ports, args.seconds, args.connections, run_id)
        load = f"{os.getloadavg()[0]:.1f}"
        acknowledged = checked_pass(ports, args.checked)
        wait_caught_up(url)
        check = verify(url, run_id, acknowledged)
    finally:
        for service in services:
            service.terminate()
        for service in services:
            service.wait(timeout=60)
    wrk_ok = sum(r["requests"] - r["non2xx"] - r["errors"] for r in loads)
    duration = max(r["duration_us"] for r in loads) / 1e6
    assert check["wrk_stored"] >= wrk_ok, (check, wrk_ok)
    result = {
        "rate": wrk_ok / duration,
        "p50": max(r["p50_us"] for r in loads) / 1e6,
        "p99": max(r["p99_us"] for r in loads) / 1e6,
        "errors": sum(r["errors"] + r["non2xx"] for r in loads),
        "max_holders": holders.max_holders,
        "lock_samples": holders.samples,
        "lock_samples_held": holders.held_samples,
        "load": load,
        **check,
    }
    print(f"  {result}", flush=True)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
    return result


def fresh_database(server_url: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    url = psycopg.conninfo.make_conninfo(server_url, dbname=DB)
    migrate(url)
    return url


def serve(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "info"]
        + (["--workers", str(workers)] if workers > 1 else []),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wrk_on(ports: list[int], seconds: float, connections: int, run_id: str) -> list[dict[str, int]]:
    """One wrk per port, at once, the connections split between them."""
    token = mint_token(SECRET, "demo", [VIEW, MANAGE])
    procs = [
        subprocess.Popen(
            [
                "wrk",
                "-t",
                "1",
                "-c",
                str(connections // len(ports)),
                "-d",
                f"{seconds:.0f}s",
                "--latency",
                "-s",
                str(ROOT / "bench" / "ingest.lua"),
                f"http://127.0.0.1:{port}",
            ],
            env={**os.environ, "TOKEN": token, "RUN": f"{run_id}p{port}"},
            stdout=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
        results.append({k: int(v) for k, v in (p.split("=") for p in line.split()[1:])})
    return results


def checked_pass(ports: list[int], n: int, threads: int = 8) -> set[str]:
    """`n` scans over the ports; the eventIds answered 200."""
    token = mint_token(SECRET, "demo", [VIEW, MANAGE])
    acknowledged: set[str] = set()
    lock = threading.Lock()

    def client(t: int) -> None:
        conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in ports}
        mine = []
        for i in range(t, n, threads):
            event_id = f"c{t}-{i}"
            body = json.dumps(
                {
                    "eventId": event_id,
                    "orderNumber": f"o{i % 500}",
                    "productId": f"p{i % 7}",
                    "unit": "H87",
                    "packedAmount": 1,
                    "timestamp": "2024-05-01T10:00:00.000Z",
                    "site": "main",
                }
            )
            conn = conns[ports[i % len(ports)]]
            conn.request(
                "POST",
                "/pick-pack/demo/events",
                body,
                {
                    "Authorization": f"Bearer {token}",
                    "saas-token": "bench",
                    "Content-Type": "application/json",
                },
            )
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                mine.append(event_id)
        with lock:
            acknowledged.update(mine)

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return acknowledged


def wait_caught_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT (SELECT coalesce(max(notification_id), 0) FROM stored_events), "
                "(SELECT coalesce(min(notification_id), 0) FROM notification_tracking "
                "WHERE application_name IN ('line_totals', 'order_status'))"
            ).fetchone()
            assert row is not None
            if row[1] >= row[0]:
                return
            time.sleep(0.2)
    raise RuntimeError("the projections did not catch up")


def verify(url: str, run_id: str, acknowledged: set[str]) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        stored = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT event_id, count(*) FROM packing_events WHERE tenant = 'demo' "
                "GROUP BY event_id"
            )
        }
        # The store's own count of scans and of distinct eventIds (states may be stored
        # compressed: decoded here, not in SQL).
        states = conn.execute(
            "SELECT state FROM stored_events WHERE topic LIKE '%PackingEventRecorded'"
        ).fetchall()
        ids = {orjson.loads(state_json(r[0]))["event_id"] for r in states}
        row = (len(states), len(ids))
        # Each scan packs 1: both views' packed sums must equal the number of scans.
        sums = conn.execute(
            "SELECT (SELECT coalesce(sum(packed), 0) FROM line_totals WHERE tenant = 'demo'), "
            "(SELECT coalesce(sum((u.value ->> 1)::bigint), 0) FROM order_status o, "
            "jsonb_each(o.lines) p, jsonb_each(p.value) u WHERE o.tenant = 'demo')"
        ).fetchone()
    assert row is not None and sums is not None
    lost = sum(1 for e in acknowledged if e not in stored)
    duplicated = sum(1 for c in stored.values() if c > 1) + (row[0] - row[1])
    scans = len(stored)
    return {
        "scans_stored": scans,
        "stored_events": row[0],
        "acknowledged": len(acknowledged),
        "lost": lost,
        "duplicated": duplicated,
        "wrk_stored": sum(1 for e in stored if e.startswith(run_id)),
        "views_packed": (int(sums[0]), int(sums[1])),
        "views_match": int(sums[0]) == int(sums[1]) == scans == row[0],
    }


class LockSampler:
    """Samples, every ~10 ms, how many backends hold each projection's runner lock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys = [lock_key(name) for name in ("line_totals", "order_status")]
        self.max_holders = 0
        self.samples = 0
        self.held_samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        # pg_locks shows a bigint advisory key as classid (high 32 bits), objid (low).
        query = (
            "SELECT ((classid::bigint << 32) | objid::bigint) AS k, count(*) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND objsubid = 1 GROUP BY 1"
        )
        keys = {k & 0xFFFFFFFFFFFFFFFF for k in self.keys}
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.01):
                rows = conn.execute(query).fetchall()
                self.samples += 1
                counts = [int(c) for k, c in rows if int(k) & 0xFFFFFFFFFFFFFFFF in keys]
                if counts:
                    self.held_samples += 1
                    self.max_holders = max(self.max_holders, *counts)


if __name__ == "__main__":
    main()
