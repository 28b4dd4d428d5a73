"""Scans while the database is maintained: VACUUM, ANALYZE, index builds during the shift.

    python bench/maintenance.py [--rate 500] [--events 200000] [--database-url URL]
                                [--server-root DIR] [--vacuum-cost-delay MS]

Seeds a fresh database (COPY, bench/seed.py) on an embedded PostgreSQL (or on the server
of `--database-url`, in a database of its own), starts `pickpack serve` on it, waits for
the projections to catch up, then posts scans at a steady rate from several clients
(http.client, paced as bench/lag.py's) through phases, each on the same running service:

- baseline: 10 s without maintenance;
- a 10 s hold of SHARE UPDATE EXCLUSIVE on stored_events (what every VACUUM, ANALYZE,
  CREATE INDEX CONCURRENTLY and autovacuum holds, for as long as they run);
- `VACUUM (ANALYZE)` of the whole database;
- `VACUUM (FREEZE)` of stored_events (what a wraparound vacuum does, and it never yields);
- `CREATE INDEX CONCURRENTLY` on stored_events (dropped concurrently afterwards);
- `REINDEX TABLE CONCURRENTLY stored_events` (beyond the target's four operations: it
  rebuilds the store's two largest indexes, the heaviest I/O an operator may start).

Each maintenance phase has 1 s of scans before and after the operation. For each phase
it prints the operation's duration, the scans sent, the failed ones (any answer but 200,
or no answer), p50/p99/max latency (from sending a scan to its answer), and in how many
of its pg_locks samples (every ~5 ms) a backend of the service was waiting for a lock
(a scan stalled by a lock, not by the machine's load), and what the service's active
backends were waiting on otherwise. Target: no failed scan, max under 200 ms, while each
of the four operations above runs (the hold, VACUUM (ANALYZE), VACUUM (FREEZE), CREATE
INDEX CONCURRENTLY); the baseline and the REINDEX are printed against the same bound.

`--server-root DIR` runs the service from another checkout (e.g. `git archive` of the
commit before the append lock, unpacked in DIR) for a before/after on the same machine.

`--convert` measures the conversion to the partitioned store instead (migrations
0052-0056, docs/explanation/retention.md): the store is made at the schema before them
(seeded, or copied from `--template DB`, e.g. the 10-million-event store), served by
`--server-root` (a checkout of the release before, which never applies them), and the
phases are a baseline, each of the three migrations applied by this checkout's
`migrate` while the scans flow (as a rolling upgrade applies them), and a baseline on the
partitioned store. `--skip-views` sets the projections' positions to the head instead of
rebuilding the views first (a 10-million-event rebuild takes minutes; scans do not read
the views).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import wait_ready  # noqa: E402
from bench.seed import seed, seeded_database  # noqa: E402
from ledger.adapters.migrate import migrate, shipped_migrations  # noqa: E402
from ledger.services.signing import MANAGE, VIEW, mint_token  # noqa: E402

BEFORE_PARTITIONS = [m for m in shipped_migrations() if m.version < 52]

SECRET = "bench-secret-" + uuid.uuid4().hex
PORT = 18234
TARGET_MAX_MS = 200.0
MAINTENANCE = "bench-maintenance"  # the maintenance sessions' application_name


@dataclass
class Phase:
    name: str
    targeted: bool = True  # one of the four operations (else baseline, REINDEX)
    took: float = 0.0  # the maintenance operation's own duration
    wall: float = 0.0  # the whole phase, scans before and after the operation included
    # pg_locks samples (every ~5 ms) in which the service's backends waited for a lock:
    # tells a scan stalled by a lock from one slowed by the machine's load.
    waits: int = 0
    samples: int = 0
    # What the service's active backends were waiting on in those samples, other than a
    # lock or their client (e.g. IO:WALSync: a commit flushing the WAL): by sample count.
    waiting_on: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500, help="scans per second")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--events", type=int, default=200_000, help="events seeded first")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds of the lock hold")
    parser.add_argument("--database-url", help="a server to create the database on")
    parser.add_argument(
        "--vacuum-cost-delay",
        type=float,
        help="ms: SET vacuum_cost_delay in the maintenance sessions (default: the server's)",
    )
    parser.add_argument("--server-root", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--convert", action="store_true", help="measure migrations 0052-0056")
    parser.add_argument("--template", help="copy this database instead of seeding (--convert)")
    parser.add_argument("--skip-views", action="store_true", help="no rebuild: positions to head")
    args = parser.parse_args()
    with _store(args) as url:
        env = {**os.environ, "PICKPACK_JWT_SECRET": SECRET, "PICKPACK_DATABASE_URL": url}
        if args.skip_views:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO notification_tracking (application_name, notification_id) "
                    "SELECT p, (SELECT max(notification_id) FROM stored_events) "
                    "FROM unnest(ARRAY['line_totals', 'order_status']) p "
                    "ON CONFLICT (application_name) DO UPDATE "
                    "SET notification_id = excluded.notification_id"
                )
        else:
            # The views built before the service starts (a rebuild is ten times faster
            # than the live runners' catch-up), so no catch-up runs during the phases.
            subprocess.run(
                [sys.executable, "-m", "cli.main", "projections", "rebuild", "--all"],
                cwd=args.server_root,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        service = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(PORT)],
            cwd=args.server_root,  # `-m` imports from here first: that checkout's code
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{PORT}", "/ready")
            caught_up(url)
            phases = run(url, args)
        finally:
            service.terminate()
            service.wait(timeout=30)
    print(
        f"{args.rate:.0f} scans/s from {args.clients} clients, store "
        + (
            f"copied from {args.template}"
            if args.template
            else f"seeded with {args.events:,} events"
        )
        + f", service from {args.server_root}"
    )
    print(
        f"{'phase':<34} {'op s':>6} {'scans':>6} {'/s':>5} {'failed':>6} "
        f"{'p50':>8} {'p99':>8} {'max':>9} {'lock waits':>12}  waiting on (samples)"
    )
    ok = True
    beyond = []
    for p in phases:
        q = statistics.quantiles(p.latencies, n=100) if len(p.latencies) > 1 else [0.0] * 99
        worst = max(p.latencies, default=0.0) * 1000
        sent = len(p.latencies) + len(p.failures)
        print(
            f"{p.name:<34} {p.took:>6.1f} {sent:>6} {sent / p.wall:>5.0f} {len(p.failures):>6} "
            f"{q[49] * 1000:>6.1f}ms {q[98] * 1000:>6.1f}ms {worst:>7.1f}ms "
            f"{p.waits:>5}/{p.samples:<6}  "
            + ", ".join(f"{event} {n}" for event, n in p.waiting_on.most_common(3))
        )
        for reason in sorted(set(p.failures))[:3]:
            print(f"    failed: {reason}")
        within = not p.failures and worst < TARGET_MAX_MS
        if p.targeted:
            ok = ok and within
        else:
            beyond.append(f"{p.name.split(' (')[0]}: {'within' if within else 'NOT within'}")
    operations = (
        "each migration of the conversion runs"
        if args.convert
        else "the hold, VACUUM (ANALYZE), VACUUM (FREEZE) and CREATE INDEX CONCURRENTLY run"
    )
    print(f"target (no failed scan, max < 200 ms while {operations}):", "met" if ok else "NOT met")
    print("the same bound for the other phases:", "; ".join(beyond))


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[str]:
    """The store the phases run on: seeded at this release's schema, or (--convert) at the
    schema before the partitioned store, seeded or copied from --template."""
    if not args.convert:
        with seeded_database(args.database_url, "pp_maintenance", args.events) as (url, _):
            yield url
        return
    if args.database_url is None:
        raise SystemExit("--convert needs --database-url (a server to copy or seed on)")
    name = "pp_maintenance_convert"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        # FILE_COPY: a copy of the files after a checkpoint, not gigabytes of WAL.
        template = f" TEMPLATE {args.template} STRATEGY FILE_COPY" if args.template else ""
        conn.execute(f"CREATE DATABASE {name}{template}")
    url = psycopg.conninfo.make_conninfo(args.database_url, dbname=name)
    try:
        if not args.template:
            migrate(url, BEFORE_PARTITIONS)
            seed(url, args.events)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        yield url
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def conversion_plan(url: str) -> list[tuple[str, Callable[[], None]]]:
    """A baseline, each migration of the conversion in turn, a baseline after."""
    shipped = shipped_migrations()

    def up_to(version: int) -> Callable[[], None]:
        return lambda: print(
            "  applied", migrate(url, [m for m in shipped if m.version <= version]), flush=True
        )

    return [
        ("baseline (not partitioned)", lambda: time.sleep(10.0)),
        ("0052 expand (FKs, CHECK NOT VALID)", up_to(52)),
        ("0053 VALIDATE the range checks", up_to(53)),
        ("0054 switch (+0055, partitions ahead)", up_to(55)),
        ("0056 ANALYZE the partitioned tables", up_to(9999)),
        ("baseline (partitioned)", lambda: time.sleep(10.0)),
    ]


def run(url: str, args: argparse.Namespace) -> list[Phase]:
    def hold() -> None:
        with psycopg.connect(url, application_name=MAINTENANCE) as conn:  # held open
            conn.execute("LOCK TABLE stored_events IN SHARE UPDATE EXCLUSIVE MODE")
            time.sleep(args.hold)
            conn.rollback()

    def sql(statement: str) -> Callable[[], None]:
        def op() -> None:
            with psycopg.connect(url, autocommit=True, application_name=MAINTENANCE) as conn:
                if args.vacuum_cost_delay is not None:
                    # The cost-based delay autovacuum uses (2 ms) and a manual VACUUM
                    # does not (0): it paces the operation's page reads and writes.
                    conn.execute(f"SET vacuum_cost_delay = {args.vacuum_cost_delay:g}")
                conn.execute(statement)

        return op

    def create_index() -> None:
        sql("CREATE INDEX CONCURRENTLY bench_maintenance ON stored_events (topic)")()

    plan: list[tuple[str, Callable[[], None]]] = [
        ("baseline (no maintenance)", lambda: time.sleep(10.0)),
        (f"SHARE UPDATE EXCLUSIVE held {args.hold:.0f} s", hold),
        ("VACUUM (ANALYZE) database", sql("VACUUM (ANALYZE)")),
        ("VACUUM (FREEZE) stored_events", sql("VACUUM (FREEZE) stored_events")),
        ("CREATE INDEX CONCURRENTLY", create_index),
        ("REINDEX TABLE CONCURRENTLY", sql("REINDEX TABLE CONCURRENTLY stored_events")),
    ]
    if args.convert:
        plan = conversion_plan(url)
    phases = []
    for n, (name, op) in enumerate(plan):
        phases.append(phase(url, n, name, op, args.rate, args.clients))
        phases[-1].targeted = name.startswith(("SHARE", "VACUUM", "CREATE", "005"))
        if op is create_index:
            sql("DROP INDEX CONCURRENTLY bench_maintenance")()
        time.sleep(1.0)
    return phases


def phase(url: str, n: int, name: str, op: Callable[[], None], rate: float, clients: int) -> Phase:
    """Scans at `rate` for 1 s, while `op` runs, and 1 s after."""
    result = Phase(name)
    stop = threading.Event()

    def watch() -> None:
        with psycopg.connect(url, autocommit=True, application_name=MAINTENANCE) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE NOT l.granted AND a.application_name <> %s "
                    "AND a.datname = current_database()",
                    (MAINTENANCE,),
                ).fetchone()
                result.samples += 1
                result.waits += bool(row and row[0])
                for (event,) in conn.execute(
                    "SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE 'pickpack%' "
                    "AND state = 'active' AND wait_event_type NOT IN ('Client', 'Activity')"
                ):
                    result.waiting_on[event] += 1
                time.sleep(0.005)

    lock = threading.Lock()
    headers = {
        "Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}",
        "saas-token": "bench",
        "Content-Type": "application/json",
    }

    def client(c: int) -> None:
        interval = clients / rate
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        start = time.perf_counter() + c * interval / clients
        i = 0
        while not stop.is_set():
            time.sleep(max(0.0, start + i * interval - time.perf_counter()))
            body = (
                f'{{"eventId":"m{n}-{c}-{i}","orderNumber":"o{i % 500}","productId":"p{c}",'
                '"unit":"H87","packedAmount":1,"site":"main",'
                '"timestamp":"2024-05-01T10:00:00.000Z"}'
            )
            sent = time.perf_counter()
            try:
                conn.request("POST", "/pick-pack/demo/events", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                took = time.perf_counter() - sent
                failure = None if response.status == 200 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as e:
                failure = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            with lock:
                if failure:
                    result.failures.append(failure)
                else:
                    result.latencies.append(took)
            i += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    threads.append(threading.Thread(target=watch))
    first = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(1.0)
    began = time.perf_counter()
    op()
    result.took = time.perf_counter() - began
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    result.wall = time.perf_counter() - first
    return result


def caught_up(url: str, timeout: float = 300.0) -> None:
    """Wait until both projections have applied the seeded store (no catch-up in phases)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT (SELECT coalesce(max(notification_id), 0) FROM stored_events), "
                "(SELECT coalesce(min(notification_id), 0) FROM notification_tracking "
                "WHERE application_name IN ('line_totals', 'order_status')), "
                "(SELECT count(*) FROM notification_tracking "
                "WHERE application_name IN ('line_totals', 'order_status'))"
            ).fetchone()
            assert row is not None
            head, applied, tracked = row
            if tracked == 2 and applied >= head:
                return
            time.sleep(0.5)
    raise RuntimeError("the projections did not catch up with the seeded store")


if __name__ == "__main__":
    main()
