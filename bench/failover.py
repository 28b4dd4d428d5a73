"""Failover under a steady scan load, and the cost of synchronous replication.

    python -m bench.failover events [--rate 100] [--clients 16] [--ttl 20]
    python -m bench.failover sync-cost [--seconds 10] [--connections 32] [--delay-ms 1]
                                       [--rounds 3]

`events`: a Patroni cluster on loopback (devtools/ha_cluster.py: etcd, three PostgreSQL 15
nodes, synchronous replication, HAProxy checking Patroni's /primary), `pickpack serve` on
the HAProxy URL, and scanners posting distinct scans at a steady rate, each resent with
its eventId until answered 200 (as the scanners do). Three events, one after the other,
the cluster healthy again (three members, a synchronous standby) before each:

  (a) kill: SIGKILL of the leader's postmaster (its Patroni lives and restarts it);
  (b) freeze: SIGSTOP of every process of the leader (a hung host), resumed 10 s after a
      new leader runs (it must rejoin as a replica);
  (c) switchover: `patronictl switchover`, on purpose;
  (d) kill-leader (not run unless named): SIGKILL of the leader's Patroni and postmaster
      together (a crashed host; the suite's failover test runs the freeze only).

For each: the time without a successful scan, the 503s (and dropped connections), the
p99 of the requests begun in the 30 s around the event against the p99 before it, and at
the end acked against stored (lost, duplicated) and how long the projections took to
catch up with the store.

`sync-cost`: scans per second through the service on one server against a synchronous
pair (a primary whose COMMIT waits for a standby's flush), in the same run, driven by
wrk, in alternated runs (single, sync, sync, single, ...; medians): on loopback, and with
`--delay-ms` added between the nodes by a userspace TCP relay between standby and primary
that holds each chunk for half the delay in each direction. (tc netem inside a network
namespace was the plan; this machine's kernel has no sch_netem module, and the relay runs
in both configurations of a delay, so its own CPU cost is in the baseline too.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import MANAGE, VIEW, mint_token  # noqa: E402
from bench.ingest import drive_wrk, find_wrk, start_serve, wait_ready  # noqa: E402
from devtools.ha_cluster import HACluster  # noqa: E402
from devtools.harness.faults import indexed_event_ids, wait_caught_up  # noqa: E402
from devtools.harness.streaming import Server, run_as  # noqa: E402
from devtools.patroni import PG_BIN, free_port, unprivileged_user  # noqa: E402

SECRET = "bench-secret-" + uuid.uuid4().hex


# -- events --------------------------------------------------------------------------------


@dataclass
class Scanners:
    """`clients` scanners posting distinct scans at `rate` per second in all."""

    url: str
    rate: float
    clients: int
    attempts: list[tuple[float, float, int]] = field(default_factory=list)  # start, end, status
    acked: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.clients)
        ]
        for t in threads:
            t.start()
        return threads

    def _run(self, i: int) -> None:
        hdrs = {
            "Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}",
            "saas-token": "bench",
        }
        interval = self.clients / self.rate
        due = time.monotonic()
        n = 0
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                body = {
                    "eventId": f"f{i}-{n}-{uuid.uuid4().hex[:6]}",
                    "orderNumber": f"o{n % 50}",
                    "productId": f"p{i % 7}",
                    "unit": "H87",
                    "packedAmount": 1,
                    "timestamp": "2026-12-06T10:00:00.000Z",
                    "site": "main",
                }
                n += 1
                while True:
                    started = time.monotonic()
                    try:
                        status = http.post(
                            f"{self.url}/pick-pack/demo/events", json=body, headers=hdrs
                        ).status_code
                    except httpx.TransportError:
                        status = 0
                    with self.lock:
                        self.attempts.append((started, time.monotonic(), status))
                    if status == 200:
                        with self.lock:
                            self.acked[body["eventId"]] += 1
                        break
                    time.sleep(0.2)  # Retry-After says 1; a scanner retries sooner
                due += interval
                time.sleep(max(0.0, due - time.monotonic()))
                due = max(due, time.monotonic() - interval)

    def window(self, start: float, end: float) -> list[tuple[float, float, int]]:
        with self.lock:
            return [a for a in self.attempts if start <= a[0] < end]


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def outage(scanners: Scanners, event: float, until: float) -> float:
    """The longest time without a successful scan answer, from a second before the event."""
    with scanners.lock:
        oks = sorted(end for _, end, status in scanners.attempts if status == 200)
    oks = [t for t in oks if event - 1 <= t <= until]
    if len(oks) < 2:
        return float("nan")
    return max(b - a for a, b in itertools.pairwise(oks))


def wait_healthy(cluster: HACluster, members: int = 3, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cluster.healthy(members=members):
        if time.monotonic() > deadline:
            raise TimeoutError(f"cluster not healthy: {cluster.cluster()}")
        time.sleep(0.5)


def wait_new_leader(cluster: HACluster, old: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = cluster.leader()
        if leader is not None and leader.name != old:
            return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError(f"no new leader after {old}")


def events(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="pp-ha-bench-"))
    cluster = HACluster(root, ttl=args.ttl)
    print(f"cluster in {root} (Patroni ttl {args.ttl} s, loop_wait 1 s, synchronous_mode)")
    cluster.start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")},
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATABASE_URL": cluster.url,
        "PICKPACK_DATA_DIR": str(root / "serve"),
    }
    service = start_serve(port, env)
    base = f"http://127.0.0.1:{port}"
    results: list[str] = []
    try:
        wait_ready(base, "/ready")
        scanners = Scanners(base, args.rate, args.clients)
        threads = scanners.start()
        time.sleep(args.settle)
        members = 3  # a killed leader stays down: the rest go on with two nodes
        for name in args.scenarios:
            wait_healthy(cluster, members)
            time.sleep(args.settle)
            before = [
                e - s for s, e, st in scanners.window(time.monotonic() - 10, 1e18) if st == 200
            ]
            leader = cluster.leader()
            assert leader is not None
            event = time.monotonic()
            promoted = None
            new_leader = None  # read before a frozen leader resumes (it may claim /primary)
            if name == "kill":
                cluster.kill_postmaster()
                time.sleep(args.observe)
            elif name == "freeze":
                _, pids = cluster.freeze_leader()
                promoted = wait_new_leader(cluster, leader.name)
                new_leader = cluster.leader()
                time.sleep(10)
                cluster.thaw(pids)
                time.sleep(max(0.0, args.observe - (time.monotonic() - event)))
            elif name == "kill-leader":
                cluster.kill_leader()
                members -= 1
                promoted = wait_new_leader(cluster, leader.name)
                time.sleep(args.observe)
            elif name == "switchover":
                cluster.switchover()
                promoted = wait_new_leader(cluster, leader.name)
                time.sleep(args.observe)
            end = time.monotonic()
            around = scanners.window(event - 5, end)
            statuses = Counter(st for _, _, st in around)
            gap = outage(scanners, event, end)
            after = new_leader or cluster.leader()
            line = (
                f"({name}) leader {leader.name} -> {after.name if after else None}"
                + (f", promoted {promoted - event:.1f} s after the event" if promoted else "")
                + f"; no successful scan for {gap:.2f} s; 503: {statuses[503]}, "
                f"dropped connections: {statuses[0]}, other: "
                f"{sum(v for k, v in statuses.items() if k not in (0, 200, 503))}; "
                f"p99 {p99([e - s for s, e, _ in around]) * 1000:.0f} ms around the event "
                f"(p99 {p99(before) * 1000:.0f} ms in the 10 s before)"
            )
            print(line, flush=True)
            results.append(line)
        scanners.stop.set()
        for t in threads:
            t.join(timeout=60)
        wait_healthy(cluster, members)
        stored = indexed_event_ids(cluster.url)
        lost = set(scanners.acked) - set(stored)
        duplicated = [e for e, n in stored.items() if n > 1]
        caught_up = wait_caught_up(cluster.url, timeout=120)
        summary = (
            f"acked {len(scanners.acked)}, stored {len(stored)}: lost {len(lost)}, "
            f"duplicated {len(duplicated)}; projections caught up {caught_up:.2f} s after "
            f"the load stopped; {len(scanners.attempts)} requests at {args.rate:g}/s "
            f"from {args.clients} scanners"
        )
        print(summary)
    finally:
        service.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.wait(timeout=30)
        if service.poll() is None:
            service.kill()
        cluster.kill()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


# -- the cost of synchronous replication ---------------------------------------------------


class DelayRelay:
    """A TCP relay on 127.0.0.1 that holds every chunk `delay` seconds in each direction
    (half the round trip each way), in order: a network's latency without netem."""

    def __init__(self, target_port: int, one_way: float) -> None:
        self.target_port = target_port
        self.one_way = one_way
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> DelayRelay:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _serve(self) -> None:
        await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.one_way, chunk))
        queue.put_nowait((0.0, b""))
        await sender


def sync_cost(args: argparse.Namespace) -> None:
    if not find_wrk():
        raise SystemExit("wrk is needed (apt-get install wrk)")
    user = unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="pp-sync-bench-"))
    os.chown(root, user.pw_uid, user.pw_gid)
    primary = Server(root / "primary", free_port())
    standby = Server(root / "standby", free_port())
    run_as(user, [str(PG_BIN / "initdb"), "-D", str(primary.data), "-U", "postgres",
                  "-A", "trust", "--locale=C", "-E", "UTF8"])  # fmt: skip
    (primary.data / "pg_hba.conf").open("a").write("host replication postgres 127.0.0.1/32 trust\n")
    primary.start(user, "-c", "wal_level=replica", "-c", "max_wal_senders=5")
    run_as(user, [str(PG_BIN / "pg_basebackup"), "-D", str(standby.data), "-h", "127.0.0.1",
                  "-p", str(primary.port), "-U", "postgres", "-X", "stream"])  # fmt: skip
    results: list[str] = [
        f"sync-cost: {args.connections} connections, {args.seconds:g} s per run, wrk; "
        f"added delay {args.delay_ms:g} ms (userspace relay)"
    ]
    relay: DelayRelay | None = None
    try:
        for delay in (0.0, args.delay_ms):
            target = primary.port
            if delay:
                relay = DelayRelay(primary.port, delay / 2000).__enter__()
                target = relay.port
            conninfo = f"host=127.0.0.1 port={target} user=postgres application_name=standby1"
            (standby.data / "standby.signal").touch()
            standby.start(user, "-c", f"primary_conninfo={conninfo}", "-c", "hot_standby=on")
            rates: dict[str, list[float]] = {"single": [], "sync": []}
            order = ["single", "sync", "sync", "single"] * args.rounds  # A B B A: no drift bias
            for i, mode in enumerate(order[: 2 * args.rounds]):
                names = "'standby1'" if mode == "sync" else "''"
                with psycopg.connect(primary.url, autocommit=True) as conn:
                    conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = {names}")
                    conn.execute("SELECT pg_reload_conf()")
                    want = "sync" if mode == "sync" else "async"
                    deadline = time.monotonic() + 30
                    while conn.execute(
                        "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'"
                    ).fetchone() != (want,):  # the standby streams, as synchronous or not
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"the standby is not {want}")
                        time.sleep(0.2)
                rate, p50, p99_ = ingest(primary.url, root / f"serve-{mode}-{delay:g}-{i}", args)
                rates[mode].append(rate)
                results.append(
                    f"  delay {delay:g} ms, {mode:6}: {rate:8.0f} scans/s, "
                    f"p50 {p50 * 1000:.1f} ms, p99 {p99_ * 1000:.1f} ms"
                )
                print(results[-1], flush=True)
            single, sync = statistics.median(rates["single"]), statistics.median(rates["sync"])
            results.append(
                f"  delay {delay:g} ms: medians single {single:.0f}, sync {sync:.0f} scans/s: "
                f"sync/single {sync / single:.2f}x ({args.rounds} runs each)"
            )
            print(results[-1], flush=True)
            standby.stop()
            if relay is not None:
                relay.__exit__()
                relay = None
        print("\n".join(results))
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def ingest(url: str, data: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    """wrk against `pickpack serve` on `url` (a fresh database each time)."""
    dbname = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")},
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATABASE_URL": url.rsplit("/", 1)[0] + "/" + dbname,
        "PICKPACK_DATA_DIR": str(data),
    }
    service = start_serve(port, env, pin=["taskset", "-c", "1"])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, "/ready")
        import bench.ingest as ingest_bench

        ingest_bench.SECRET = SECRET
        return drive_wrk(base, args.seconds, args.connections, f"{dbname}")
    finally:
        service.terminate()
        service.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("events")
    ev.add_argument("--rate", type=float, default=100)
    ev.add_argument("--clients", type=int, default=16)
    ev.add_argument("--ttl", type=int, default=20)
    ev.add_argument("--settle", type=float, default=5)
    ev.add_argument("--observe", type=float, default=20, help="seconds watched after each event")
    ev.add_argument(
        "--scenarios",
        nargs="+",
        choices=["kill", "freeze", "switchover", "kill-leader"],
        default=["kill", "freeze", "switchover"],
    )
    ev.add_argument("--keep", action="store_true")
    sc = sub.add_parser("sync-cost")
    sc.add_argument("--seconds", type=float, default=10)
    sc.add_argument("--connections", type=int, default=32)
    sc.add_argument("--delay-ms", type=float, default=1.0)
    sc.add_argument("--rounds", type=int, default=3, help="runs of each configuration")
    args = parser.parse_args()
    if args.command == "events":
        events(args)
    else:
        sync_cost(args)


if __name__ == "__main__":
    main()
