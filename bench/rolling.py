"""Rolling restarts and a rolling upgrade behind HAProxy, under a steady scan load.

    python -m bench.rolling [--clients 8] [--seconds 20] [--drain 3]

Two `pickpack serve` replicas behind Debian's HAProxy with the shipped configuration
(docker/haproxy.cfg: health checks on GET /ready), and --clients scanners posting
distinct scans through it over keep-alive connections, never retrying: any error or
non-200 answer is a failed request. Three phases, each --seconds of load:

1. baseline: both replicas run this tree; nothing happens;
2. restarts: each replica in turn gets SIGTERM, exits, and is started again
   (PICKPACK_DRAIN_SECONDS=--drain), the next only once the balancer sends to it again;
3. upgrade: on a second database, both replicas run the previous release (its commit,
   extracted from this checkout's history with `git archive`, run with this interpreter's
   packages), this tree's `pickpack migrate` is applied while they serve, then each
   replica in turn is stopped and started from this tree.

For each phase: requests, failed, p50 and p99 of the answered ones, p99 against the
baseline's, scans acknowledged and how many of them the store holds. The bar: 0 failed,
0 lost, p99 within 2x of the baseline. Exit 1 when a phase misses it.

The database is an embedded PostgreSQL of the run's own (devtools/harness/faults.py
OwnPostgres); the shared server is never touched.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.harness.faults import OwnPostgres, indexed_event_ids  # noqa: E402
from devtools.harness.fleet import (  # noqa: E402
    PREVIOUS_RELEASE,
    Balancer,
    Load,
    Summary,
    extract_release,
    failures,
    replica,
    restart,
    summarize,
)
from devtools.harness.service import free_port  # noqa: E402


def database(pg: OwnPostgres, name: str) -> str:
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(pg.url, dbname=name)


class Fleet:
    """Two replicas and their balancer on one database."""

    def __init__(self, url: str, work: Path, drain: float, root: Path = ROOT) -> None:
        self.url = url
        self.ports = {"a": free_port(), "b": free_port()}
        env = {"PICKPACK_DRAIN_SECONDS": str(drain)}
        self.replicas = {
            name: replica(url, port, work / name, env, root=root)
            for name, port in self.ports.items()
        }
        self.balancer = Balancer(free_port(), free_port(), self.ports, work / "haproxy.log")

    def start(self) -> None:
        for process in self.replicas.values():
            process.start()
        self.balancer.start()
        for name in self.replicas:
            self.balancer.wait(name, "UP")

    def roll(self, root: Path | None = None) -> None:
        for name in list(self.replicas):
            self.replicas[name] = restart(self.replicas[name], self.balancer, name, root=root)
            time.sleep(1.0)

    def stop(self) -> None:
        self.balancer.stop()
        for process in self.replicas.values():
            process.stop()


def phase(
    fleet: Fleet,
    seconds: float,
    clients: int,
    prefix: str,
    action: Callable[[], None] | None = None,
) -> Summary:
    load = Load(fleet.balancer.url, clients=clients, prefix=prefix).start()
    started = time.monotonic()
    try:
        time.sleep(min(2.0, seconds / 4))
        if action is not None:
            action()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    finally:
        outcomes = load.stop()
    elapsed = time.monotonic() - started
    for line in failures(outcomes)[:10]:
        print(f"    failed: {line}")
    return summarize(outcomes, set(indexed_event_ids(fleet.url)), elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="of load per phase")
    parser.add_argument("--drain", type=float, default=3.0, help="PICKPACK_DRAIN_SECONDS")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pp-rolling-"))
    pg = OwnPostgres()
    results: dict[str, Summary] = {}
    try:
        fleet = Fleet(database(pg, "restarts"), work / "restarts", args.drain)
        fleet.start()
        try:
            print("baseline ...", flush=True)
            results["baseline"] = phase(fleet, args.seconds, args.clients, "base")
            print("restarts ...", flush=True)
            results["restarts"] = phase(fleet, args.seconds, args.clients, "restart", fleet.roll)
        finally:
            fleet.stop()

        previous = extract_release(PREVIOUS_RELEASE, work / "previous")
        url = database(pg, "upgrade")
        old = Fleet(url, work / "upgrade", args.drain, root=previous)
        old.start()  # the previous release migrates the database to its own schema

        def upgrade() -> None:
            subprocess.run(
                [sys.executable, "-m", "cli.main", "migrate"],
                cwd=ROOT,
                env={**old.replicas["a"].env, "PYTHONPATH": str(ROOT)},
                check=True,
            )
            old.roll(root=ROOT)

        try:
            print(f"upgrade from {PREVIOUS_RELEASE} ...", flush=True)
            results["upgrade"] = phase(old, args.seconds, args.clients, "upgrade", upgrade)
        finally:
            old.stop()
    finally:
        pg.stop()

    base = results["baseline"].p99_ms
    print(
        f"\n{args.clients} scanners through HAProxy to 2 replicas, {args.seconds:.0f} s a phase, "
        f"drain {args.drain:g} s"
    )
    print(
        f"{'phase':<10} {'requests':>8} {'failed':>6} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'p99/base':>8} {'acked':>6} {'stored':>6} {'lost':>4}"
    )
    ok = True
    for name, s in results.items():
        ratio = s.p99_ms / base if base else float("nan")
        print(
            f"{name:<10} {s.requests:>8} {s.failed:>6} {s.rate:>6.0f} {s.p50_ms:>7.1f} "
            f"{s.p99_ms:>7.1f} {ratio:>8.2f} {s.acked:>6} {s.stored:>6} {s.lost:>4}"
        )
        ok = ok and s.failed == 0 and s.lost == 0 and ratio <= 2.0
    print("bar (0 failed, 0 lost, p99 within 2x of the baseline):", "met" if ok else "MISSED")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs of the replicas and HAProxy: {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
