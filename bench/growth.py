"""Costs as the store grows: the same measurements on stores of several sizes, one run.

    python bench/growth.py [--sizes 0,1000000,5000000,10000000] [--database-url URL]
                           [--ingest-seconds 10] [--existing DATABASE]

For each size (0 is the empty store, the baseline of the same run) it seeds a fresh
database by COPY (bench/seed.py; 10 events per order line, so the lines grow with the
store), then measures:

- disk bytes per stored event: the event store's two tables (stored_events and
  packing_events, the dedup and feed index of scans) with their indexes and TOAST, after
  VACUUM ANALYZE, not the projections' tables (one row per line or order, not per
  event); against the event's JSON state (the library's encoding, before compression)
  and against the JSON of the event as `GET /events` returns it; and where the bytes go
  (heap, indexes, the states as stored);
- `pickpack projections rebuild --all` (in a child process): events/s and peak RSS;
- with `pickpack serve` on the database: ingest throughput (16 Python clients posting
  scans for `--ingest-seconds`), p99 of 1,000 `GET /orders/{id}` over 200 registered
  orders and of 200 packlists of those orders, and a `GET /events` page of 20,000
  (median of 3).

The load average (1 min) is printed with each size: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import MANAGE, VIEW, mint_token  # noqa: E402
from bench.ingest import SECRET, drive, start_serve, wait_ready  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from bench.seed import order_document, seeded_database  # noqa: E402
from ledger.adapters.compression import state_json  # noqa: E402

PORT = 18235
PRODUCTS = 5
EVENTS_PER_LINE = 10
ORDERS_READ = 200
PAGE = 20_000

CHILD = """
import json, sys
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS

def peak_kb():
    # This process's own peak (VmHWM). Not ru_maxrss: Linux carries the peak of the
    # process image before exec into it, so a child of a bench that had seeded millions
    # of events reported the bench's size, not its own.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

report = rebuild(sys.argv[1], list(PROJECTIONS.values()))
print(json.dumps({"events": report.events, "seconds": report.seconds,
                  "maxrss_kb": peak_kb()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0,1000000,5000000,10000000")
    parser.add_argument("--database-url")
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument(
        "--alternate",
        metavar="DATABASE",
        help="instead: the reads and ingest, in turn on a fresh empty database and on "
        "DATABASE (a store the growth run left seeded), --rounds times each",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-rebuild",
        action="store_true",
        help="skip the rebuild (bench/rebuild.py measures it, with a baseline tree)",
    )
    parser.add_argument(
        "--existing",
        metavar="DATABASE",
        help="for the sizes above 0: this database, seeded in this bench's shape before "
        "(python -c 'from bench.seed import seeded_database ...', tenant demo, N/50 orders "
        "of 5 products), instead of seeding it again; the run adds orders and scans to it",
    )
    parser.add_argument(
        "--disk-only",
        action="store_true",
        help="seed each size and measure the disk per event only (no rebuild, no serve)",
    )
    args = parser.parse_args()
    if args.disk_only:
        for n in (int(s) for s in args.sizes.split(",")):
            with seeded_database(
                args.database_url, "pp_growth", n, tenant="demo",
                orders=max(ORDERS_READ, n // (PRODUCTS * EVENTS_PER_LINE)), products=PRODUCTS,
            ) as (url, seconds):  # fmt: skip
                disk, json_size, parts = disk_per_event(url, n)
            print(
                f"{n:,} events (seeded in {seconds:.0f}s): {disk:.0f} bytes/event, "
                f"JSON {json_size:.0f}, {disk / json_size:.2f}x; "
                + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()),
                flush=True,
            )
        return
    if args.alternate:
        alternate(args)
        return
    results = [measure(int(n), args) for n in args.sizes.split(",")]
    base = results[0]
    print(
        f"{'events':>11} {'disk B/ev':>9} {'JSON B':>7} {'API B':>6} {'rebuild ev/s':>12} "
        f"{'RSS MB':>7} {'ingest/s':>9} {'vs base':>7} {'order p99':>9} {'packlist p99':>12} "
        f"{'page 20k':>9} {'load':>5}"
    )
    for r in results:
        print(
            f"{r['events']:>11,} {r['disk']:>9.0f} {r['json']:>7.0f} {r['api_json']:>6.0f} "
            f"{r['rebuild']:>12,.0f} {r['rss']:>7.0f} {r['ingest']:>9,.0f} "
            f"{r['ingest'] / base['ingest']:>6.2f}x {r['order_p99']:>7.1f}ms "
            f"{r['packlist_p99']:>10.1f}ms {r['page']:>7.0f}ms {r['load']:>5}"
        )
    for r in results:
        if r["events"]:
            parts = ", ".join(f"{k} {v:.0f}" for k, v in r["disk_parts"].items())
            print(f"{r['events']:>11,} bytes/event: {parts}")


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    with _store(n, args) as url:
        disk, json_size, disk_parts = disk_per_event(url, n)
        rebuild = (
            {"events": 0, "seconds": 0.0, "maxrss_kb": 0}
            if args.no_rebuild
            else rebuild_in_child(url)
        )
        print(f"  rebuild: {rebuild}", flush=True)
        served = serve_and_measure(url, n, args.ingest_seconds)
    result = {
        "events": n,
        "disk": disk,
        "json": json_size,
        "disk_parts": disk_parts,
        "rebuild": rebuild["events"] / rebuild["seconds"] if rebuild["seconds"] else 0.0,
        "rss": rebuild["maxrss_kb"] / 1024,
        **served,
    }
    print(f"  {result}", flush=True)
    return result


@contextmanager
def _store(n: int, args: argparse.Namespace) -> Iterator[str]:
    """A store of `n` events in this bench's shape: seeded afresh, or with --existing
    (for its size) a database seeded so before, VACUUM ANALYZEd, used as it is."""
    server = args.database_url or "postgresql://postgres@127.0.0.1:5432/postgres"
    if args.existing and n:
        url = psycopg.conninfo.make_conninfo(server, dbname=args.existing)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM stored_events").fetchone()
        if not row or row[0] != n:
            raise SystemExit(f"{args.existing} holds {row and row[0]:,} events, not {n:,}")
        print(f"{n:,} events: the existing store {args.existing}", flush=True)
        yield url
        return
    orders = max(ORDERS_READ, n // (PRODUCTS * EVENTS_PER_LINE))
    with seeded_database(
        args.database_url, "pp_growth", n, tenant="demo", orders=orders, products=PRODUCTS
    ) as (url, seconds):
        print(f"{n:,} events seeded in {seconds:.1f}s", flush=True)
        yield url


def serve_and_measure(url: str, n: int, ingest_seconds: float) -> dict[str, Any]:
    """Reads and ingest on `pickpack serve` over `url` (a store of `n` events)."""
    env = {
        **os.environ,
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATABASE_URL": url,
        "PICKPACK_DATA_DIR": scratch_dir("pp-growth-data-"),
    }
    service = start_serve(PORT, env)
    try:
        base = f"http://127.0.0.1:{PORT}"
        wait_ready(base, "/ready")
        reads = read_latencies(base, n)
        rate, _ = drive(base, ingest_seconds, 16)
    finally:
        service.terminate()
        service.wait(timeout=30)
    return {"ingest": rate, "load": f"{os.getloadavg()[0]:.1f}", **reads}


def alternate(args: argparse.Namespace) -> None:
    """The same measurements on an empty store and on a seeded one, taken in turn so a
    machine whose load drifts weighs on both alike; medians per store."""
    server = args.database_url or "postgresql://postgres@127.0.0.1:5432/postgres"
    seeded = psycopg.conninfo.make_conninfo(server, dbname=args.alternate)
    with psycopg.connect(seeded, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM stored_events").fetchone()
    n = int(row[0]) if row else 0
    with seeded_database(args.database_url, "pp_growth_empty", 0) as (empty, _):
        runs: dict[int, list[dict[str, Any]]] = {0: [], n: []}
        for round_ in range(args.rounds):
            for size, url in ((0, empty), (n, seeded)):
                r = serve_and_measure(url, size, args.ingest_seconds)
                print(f"round {round_ + 1}, {size:,} events: {r}", flush=True)
                runs[size].append(r)
    keys = ("ingest", "order_p99", "packlist_p99", "page")
    medians = {
        size: {k: statistics.median(r[k] for r in rs) for k in keys} for size, rs in runs.items()
    }
    for size, m in medians.items():
        loads = ", ".join(r["load"] for r in runs[size])
        print(
            f"{size:>11,} events: ingest {m['ingest']:,.0f}/s "
            f"({m['ingest'] / medians[0]['ingest']:.2f}x the empty store's), "
            f"order p99 {m['order_p99']:.1f} ms, packlist p99 {m['packlist_p99']:.1f} ms, "
            f"page {m['page']:.0f} ms (medians of {len(runs[size])}; load {loads})"
        )


# The event store's tables: the two tables, or, once partitioned by position
# (migrations 0052-0054), each of their partitions (a partitioned table has no storage
# of its own: its size is its partitions').
_STORE = (
    "(SELECT c.oid FROM pg_class c WHERE c.relname IN ('stored_events', 'packing_events') "
    "AND c.relkind = 'r' UNION SELECT t.relid::oid FROM pg_partition_tree('stored_events') t "
    "WHERE t.isleaf UNION SELECT t.relid::oid FROM pg_partition_tree('packing_events') t "
    "WHERE t.isleaf)"
)


def disk_per_event(url: str, n: int) -> tuple[float, float, dict[str, float]]:
    """Bytes per event of the event store's tables, the mean size of an event's JSON
    state (decompressed where it is stored compressed; over every 50th event), and the
    bytes per event of each table's heap (with TOAST) and each index, and of the states
    as stored (`state as stored`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT (SELECT sum(pg_total_relation_size(s.oid)) FROM {_STORE} AS s(oid)), "
            "(SELECT coalesce(avg(octet_length(state)), 0) FROM stored_events)"
        ).fetchone()
        sample = [
            len(state_json(r[0]))
            for r in conn.execute("SELECT state FROM stored_events WHERE notification_id % 50 = 0")
        ]
        parts = conn.execute(
            f"SELECT c.relname, pg_table_size(c.oid) FROM pg_class c WHERE c.oid IN {_STORE} "
            "UNION ALL SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            f"WHERE x.indrelid IN {_STORE} ORDER BY 2 DESC"
        ).fetchall()
    assert row is not None
    per_event = {str(name): float(size) / n for name, size in parts} if n else {}
    per_event["state as stored"] = float(row[1])
    json_size = statistics.mean(sample) if sample else 0.0
    return (float(row[0]) / n if n else 0.0), json_size, per_event


def rebuild_in_child(url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def read_latencies(base: str, n: int) -> dict[str, float]:
    """p99s in ms, the page's median ms, and the mean bytes of an event in the page."""
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        for o in range(ORDERS_READ):
            doc = order_document(f"o{o}", PRODUCTS)
            r = client.put(f"/pick-pack/demo/orders/o{o}", json=doc)
            assert r.status_code in (200, 201, 204), r.text
        detail = []
        for i in range(1000):
            t0 = time.perf_counter()
            r = client.get(f"/pick-pack/demo/orders/o{i * 7 % ORDERS_READ}")
            detail.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        packlist = []
        for _ in range(200):
            t0 = time.perf_counter()
            r = client.get(
                "/pick-pack/demo/orders", params={"siteCode": "main", "deliveryDate": "2024-05-01"}
            )
            packlist.append(time.perf_counter() - t0)
            assert r.status_code == 200 and len(r.json()) == ORDERS_READ, r.text
        pages = []
        api_json = 0.0
        for _ in range(3 if n >= PAGE else 0):
            t0 = time.perf_counter()
            r = client.get("/pick-pack/demo/events", params={"pageSize": PAGE, "pageNumber": 1})
            pages.append(time.perf_counter() - t0)
            items = r.json()
            assert r.status_code == 200 and len(items) == PAGE
            # An event as the API gives it: one element of the page, compact JSON.
            api_json = statistics.mean(
                len(json.dumps(e, separators=(",", ":")).encode()) for e in items
            )
    return {
        "api_json": api_json,
        "order_p99": statistics.quantiles(detail, n=100)[98] * 1000,
        "packlist_p99": statistics.quantiles(packlist, n=100)[98] * 1000,
        "page": statistics.median(pages) * 1000 if pages else 0.0,
    }


if __name__ == "__main__":
    main()
