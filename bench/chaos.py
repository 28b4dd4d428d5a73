"""Heavier fault runs than the test suite's: crashes of the service and of its database.

    python -m bench.chaos crash  [--events 20000] [--kills 4] [--clients 16]
    python -m bench.chaos outage [--events 6000] [--outages 3] [--down 3] [--up 0.5] [--clients 16]
    python -m bench.chaos two    [--events 10000] [--kills 4] [--every 1] [--clients 16]

`crash` SIGKILLs `pickpack serve` --kills times during an ingest whose scanners retry with
the same eventId and body, restarting it on the same database each time. `outage` crashes
the service's PostgreSQL (`pg_ctl stop -m immediate`) --outages times during an ingest
(each once a share of the events is answered, at least --up seconds apart), for --down
seconds each, while a probe times GET /events. `two` runs two processes on
one database, spreads the events over both (and sends a tenth of them to both at once),
SIGKILLs and restarts each in turn (once a share of the events is answered, at least
--every seconds apart) while the scanners fail over to the other, then
finishes every order with the Order Service refusing 10 calls. All then check that every
eventId answered 200 is stored exactly once, that nothing else is, and that the
projections (caught up) equal the fold of the stored events; they print what they tried
and what they measured, and exit 1 if a check fails.

Functional, not a throughput benchmark. The database is an embedded PostgreSQL of the
run's own (devtools/harness/faults.py OwnPostgres); the shared server is never touched.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.harness import fold  # noqa: E402
from devtools.harness.faults import (  # noqa: E402
    OwnPostgres,
    ScanReport,
    ServeProcess,
    headers,
    indexed_event_ids,
    make_events,
    scan,
    stored_packing_events,
    wait_caught_up,
)
from devtools.harness.service import free_port  # noqa: E402
from devtools.harness.support import scan_of_body, view_totals  # noqa: E402


def check(pg: OwnPostgres, bodies: list[dict[str, Any]], report: ScanReport) -> list[str]:
    """What went wrong (empty when nothing did), after the projections caught up."""
    problems = []
    caught_up = wait_caught_up(pg.url, timeout=120)
    stored = stored_packing_events(pg.url)
    per_id = Counter(e.event_id for e in stored)
    sent = {b["eventId"] for b in bodies}
    twice = sorted(e for e, n in per_id.items() if n > 1)
    print(
        f"  stored {len(stored)} events, {len(per_id)} distinct eventIds; "
        f"projections caught up {caught_up:.2f}s after the last answer"
    )
    if report.ok != sent:
        problems.append(f"{len(sent - report.ok)} events never answered 200")
    if twice:
        problems.append(f"{len(twice)} eventIds stored more than once, e.g. {twice[:5]}")
    if set(per_id) != report.ok:
        problems.append(f"stored != acknowledged: {len(set(per_id) ^ report.ok)} differ")
    if indexed_event_ids(pg.url) != Counter(per_id.keys()):
        problems.append("the packing_events index disagrees with the stored events")
    totals = view_totals(pg.url, "demo")
    if totals != fold.line_totals(stored):
        problems.append("line_totals != the fold of the stored events")
    if totals != fold.line_totals(fold.accepted(scan_of_body(b) for b in bodies)):
        problems.append("line_totals != the fold of the events sent")
    return problems


def crash(args: argparse.Namespace, pg: OwnPostgres, work: Path) -> list[str]:
    serve = ServeProcess(pg.url, free_port(), work / "serve")
    serve.start()
    bodies = make_events(args.events, orders=200)
    report = ScanReport()
    thresholds = [args.events * (k + 1) // (args.kills + 1) for k in range(args.kills)]
    kills: list[tuple[int, int, float]] = []  # (acks at the kill, in flight, seconds down)
    busy = threading.Lock()

    def kill_and_restart() -> None:
        with busy:
            in_flight = report.attempts - report.retries - len(report.acked)
            acks = len(report.acked)
            serve.kill()
            killed_at = time.monotonic()
            serve.start()
            kills.append((acks, in_flight, time.monotonic() - killed_at))

    deciding = threading.Lock()

    def on_answer(r: ScanReport) -> None:  # runs in the scanner threads
        with deciding:
            if not thresholds or len(r.acked) < thresholds[0] or busy.locked():
                return
            thresholds.pop(0)
        threading.Thread(target=kill_and_restart).start()

    started = time.monotonic()
    try:
        scan(bodies, [serve.url], args.clients, report, deadline=3600, on_answer=on_answer)
        took = time.monotonic() - started
        with busy:
            pass  # a restart still under way finishes first
        print(
            f"crash: {args.events} events by {args.clients} clients retrying with the same "
            f"eventId; {len(kills)} SIGKILLs (asked for {args.kills}) in {took:.1f}s"
        )
        for i, (acks, in_flight, down) in enumerate(kills, 1):
            print(
                f"  kill {i}: after {acks} answers, ~{in_flight} requests in flight, "
                f"serve ready again {down:.1f}s later"
            )
        print(
            f"  {report.attempts} attempts, {report.retries} retries "
            f"({report.connection_errors} connection errors), {len(report.ok)} answered 200, "
            f"statuses {dict(report.statuses)}"
        )
        problems = check(pg, bodies, report)
        if len(kills) < args.kills:
            problems.append(f"only {len(kills)} of {args.kills} kills happened")
        return problems
    finally:
        serve.stop()


def outage(args: argparse.Namespace, pg: OwnPostgres, work: Path) -> list[str]:
    serve = ServeProcess(pg.url, free_port(), work / "serve")
    serve.start()
    bodies = make_events(args.events, orders=200)
    report = ScanReport()
    probes: list[tuple[float, int, float]] = []  # (sent at, status, seconds)
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                at = time.monotonic()
                try:
                    status = http.get(
                        f"{serve.url}/pick-pack/demo/events",
                        params={"pageSize": 10},
                        headers=headers(),
                    ).status_code
                except httpx.TransportError:
                    status = 0
                probes.append((at, status, time.monotonic() - at))
                stop.wait(0.1)

    # (down: pg_ctl stop returned, restarting: start begins, answering: connections taken)
    windows: list[tuple[float, float, float]] = []

    # Each outage starts once a share of the events has been answered (as `crash` kills),
    # so the scanners are mid-ingest however fast the service is; at least `--up` seconds
    # apart.
    thresholds = [args.events * (k + 1) // (args.outages + 1) for k in range(args.outages)]

    def chaos() -> None:
        for threshold in thresholds:
            stop.wait(args.up)
            while len(report.acked) < threshold and not stop.is_set():
                time.sleep(0.005)
            pg.crash()
            down = time.monotonic()
            stop.wait(args.down)
            restarting = threading.Thread(target=pg.start)
            restart_at = time.monotonic()
            restarting.start()
            while not pg.answers():
                time.sleep(0.01)
            answering = time.monotonic()
            restarting.join()
            windows.append((down, restart_at, answering))

    prober = threading.Thread(target=probe)
    chaos_thread = threading.Thread(target=chaos)
    prober.start()
    chaos_thread.start()
    started = time.monotonic()
    try:
        scan(bodies, [serve.url], args.clients, report, deadline=3600)
        took = time.monotonic() - started
        chaos_thread.join()
        # Let the probe see the service answer again after the last outage (the bound
        # checked below is 5 s) before it stops.
        give_up = time.monotonic() + 6.0
        while time.monotonic() < give_up and not (
            windows and any(p[0] >= windows[-1][2] and p[1] == 200 for p in probes)
        ):
            time.sleep(0.05)
        stop.set()
        prober.join()
        print(
            f"outage: {args.events} events by {args.clients} clients retrying on 5xx; "
            f"{len(windows)} database crashes (pg_ctl stop -m immediate) of {args.down:.0f}s, "
            f"ingest took {took:.1f}s"
        )
        problems = []
        for i, (down, restart_at, answering) in enumerate(windows, 1):
            # Probes sent once the database was down and answered before its restart began.
            during = [p for p in probes if down <= p[0] and p[0] + p[2] < restart_at]
            refused = [p for p in during if p[1] == 503]
            after = [p for p in probes if p[0] >= answering and p[1] == 200]
            recovery = (after[0][0] + after[0][2] - answering) if after else float("inf")
            slowest = max((p[2] for p in during), default=0.0)
            print(
                f"  outage {i}: {len(during)} probes while down, {len(refused)} answered 503, "
                f"slowest {slowest:.2f}s (median "
                f"{statistics.median([p[2] for p in during]) if during else 0:.2f}s); first "
                f"200 {recovery:.2f}s after the database answered again"
            )
            if len(refused) != len(during):
                others = Counter(p[1] for p in during if p[1] != 503)
                problems.append(f"outage {i}: probes answered {dict(others)}, not 503")
            if slowest >= 2.0:
                problems.append(f"outage {i}: a 503 took {slowest:.2f}s")
            if recovery >= 5.0:
                problems.append(f"outage {i}: recovery took {recovery:.2f}s")
        print(
            f"  scanners: {report.attempts} attempts, {report.retries} retries "
            f"({len(report.answered_503)} events answered 503 at least once), "
            f"{len(report.ok)} answered 200, statuses {dict(report.statuses)}"
        )
        return problems + check(pg, bodies, report)
    finally:
        stop.set()
        serve.stop()


def two(args: argparse.Namespace, pg: OwnPostgres, work: Path) -> list[str]:
    """Two processes on one database, one of them SIGKILLed and restarted now and then."""
    from devtools.fake_order_service import FakeOrderService
    from devtools.harness.faults import LockWatcher, order_document, outbox
    from devtools.harness.support import FAST_RECALCULATION as FAST
    from ledger.adapters.migrate import MIGRATION_LOCK_KEY
    from ledger.adapters.sql import APPEND_LOCK_KEY
    from projections.base import lock_key
    from projections.registry import PROJECTIONS

    fake = FakeOrderService().start()
    env = {**FAST, "PICKPACK_ORDER_SERVICE_URL": fake.url}
    servers = [ServeProcess(pg.url, free_port(), work / name, env) for name in "ab"]
    starting = [threading.Thread(target=s.start) for s in servers]
    for t in starting:
        t.start()
    for t in starting:
        t.join()
    orders = 200
    distinct = make_events(args.events, prefix="d-", orders=orders)
    twice = make_events(args.events // 10, prefix="t-", orders=orders)
    reports = [ScanReport(), ScanReport(), ScanReport()]
    kills: list[tuple[str, int, float]] = []
    stop = threading.Event()

    # Each kill comes once a share of the distinct events has been answered (at least
    # --every seconds after the previous one), so every kill lands mid-ingest however
    # fast the service is.
    thresholds = [args.events * (k + 1) // (args.kills + 1) for k in range(args.kills)]

    def killer() -> None:
        for k, threshold in enumerate(thresholds):
            if stop.wait(args.every):
                return
            while len(reports[0].acked) < threshold:
                if stop.wait(0.005):
                    return
            victim = servers[k % 2]
            acks = len(reports[0].acked)
            victim.kill()
            killed_at = time.monotonic()
            victim.start()
            kills.append(("ab"[k % 2], acks, time.monotonic() - killed_at))

    try:
        with httpx.Client(timeout=30) as http:
            for i in range(orders):
                r = http.put(
                    f"{servers[i % 2].url}/pick-pack/demo/orders/o{i}",
                    json=order_document(f"o{i}"),
                    headers=headers(),
                )
                assert r.status_code == 200, r.text
        urls = [s.url for s in servers]
        runs = [
            (distinct, urls, args.clients, reports[0]),
            (twice, urls, args.clients // 4, reports[1]),
            (twice, urls[::-1], args.clients // 4, reports[2]),  # the same event, both at once
        ]
        threads = [
            threading.Thread(
                target=scan, args=(b, u, n, r), kwargs={"deadline": 3600, "failover": True}
            )
            for b, u, n, r in runs
        ]
        chaos_thread = threading.Thread(target=killer)
        started = time.monotonic()
        with LockWatcher(pg.url) as locks:
            chaos_thread.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.monotonic() - started
            stop.set()
            chaos_thread.join()
            wait_caught_up(pg.url, timeout=120)
        fake.fail(times=10, status=503)
        with httpx.Client(timeout=60) as http:
            for i in range(orders):
                r = http.post(
                    f"{servers[i % 2].url}/pick-pack/demo/orders/o{i}/finish", headers=headers()
                )
                assert r.status_code == 200, r.text
        deadline = time.monotonic() + 120
        while not (rows := outbox(pg.url)) or any(st != "SUCCESS" for _, st, _ in rows):
            assert time.monotonic() < deadline, "recalculations not delivered"
            time.sleep(0.1)
    finally:
        stop.set()
        for s in servers:
            s.stop()
        fake.stop()
    report = ScanReport()
    for r in reports:
        report.attempts += r.attempts
        report.retries += r.retries
        report.connection_errors += r.connection_errors
        report.statuses.update(r.statuses)
        report.acked.update(r.acked)
    keys = {lock_key(name) for name in PROJECTIONS}
    attempts: Counter[str] = Counter()
    for order_id, _, n in rows:
        attempts[order_id] += n
    delivered = Counter(r.order_id for r in fake.calculations() if r.order_id)
    print(
        f"two: 2 processes on one database; {len(distinct)} events spread over both and "
        f"{len(twice)} sent to both at once, {args.clients + 2 * (args.clients // 4)} "
        f"scanners failing over to the other process; {len(kills)} SIGKILLs "
        f"(asked for {args.kills}; the ingest may end first) in {took:.1f}s"
    )
    for name, acks, down in kills:
        print(f"  killed {name} after {acks} answers, ready again {down:.1f}s later")
    print(
        f"  {report.attempts} attempts, {report.retries} retries "
        f"({report.connection_errors} connection errors), statuses {dict(report.statuses)}"
    )
    print(
        f"  pg_locks sampled {locks.samples} times: projection locks held by "
        f"{len(set().union(*(locks.holders.get(k, set()) for k in keys)))} backends over "
        f"time, at most {max(locks.most_at_once[k] for k in keys)} at once"
    )
    print(
        f"  {len(rows)} recalculations, {sum(attempts.values())} attempts (10 refused "
        f"with 503), {sum(delivered.values())} calculations requests received"
    )
    problems = check(pg, distinct + twice, report)
    if reports[1].ok != reports[2].ok:
        problems.append("a pair sent to both processes was not answered 200 by both")
    if set(locks.holders) - {MIGRATION_LOCK_KEY, APPEND_LOCK_KEY} - keys:
        problems.append("advisory locks other than the projections' and writers' were taken")
    if locks.most_at_once[APPEND_LOCK_KEY] > 1:
        problems.append("two backends held the append lock at once")
    if any(locks.most_at_once[k] > 1 for k in keys):
        problems.append("two backends held one projection lock at once")
    if delivered != attempts or sum(attempts.values()) != orders + 10:
        problems.append("calculations requests received != attempts recorded")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("crash", help="SIGKILL serve during an ingest")
    c.add_argument("--events", type=int, default=20_000)
    c.add_argument("--kills", type=int, default=4)
    c.add_argument("--clients", type=int, default=16)
    o = sub.add_parser("outage", help="crash the database during an ingest")
    o.add_argument("--events", type=int, default=6_000)
    o.add_argument("--outages", type=int, default=3)
    o.add_argument("--down", type=float, default=3.0, help="seconds the database stays down")
    o.add_argument("--up", type=float, default=0.5, help="seconds between outages, at least")
    o.add_argument("--clients", type=int, default=16)
    t = sub.add_parser("two", help="two processes on one database, killed in turn")
    t.add_argument("--events", type=int, default=10_000)
    t.add_argument("--kills", type=int, default=4)
    t.add_argument("--every", type=float, default=1.0, help="seconds between kills, at least")
    t.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    pg = OwnPostgres()
    work = pg.root / "work"
    try:
        run = {"crash": crash, "outage": outage, "two": two}[args.command]
        problems = run(args, pg, work)
    finally:
        pg.stop()
    for p in problems:
        print(f"FAILED: {p}")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
