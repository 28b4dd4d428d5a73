"""Costs as the store grows: the same measurements on stores of several sizes, one run.

    python bench/growth.py [--sizes 0,1000000,5000000,10000000] [--database-url URL]
                           [--ingest-seconds 10]

For each size (0 is the empty store, the baseline of the same run) it seeds a fresh
database by COPY (bench/seed.py; 10 events per order line, so the lines grow with the
store), then measures:

- disk bytes per stored event (stored_events and packing_events with their indexes,
  after VACUUM ANALYZE) against the event's JSON state;
- `pickpack projections rebuild --all` (in a child process): events/s and peak RSS;
- with `pickpack serve` on the database: ingest throughput (16 Python clients posting
  scans for `--ingest-seconds`), p99 of `GET /orders/{id}` over 200 registered orders
  and of their packlist (200 orders), and a `GET /events` page of 20,000 (median of 3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
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

PORT = 18235
PRODUCTS = 5
EVENTS_PER_LINE = 10
ORDERS_READ = 200
PAGE = 20_000

CHILD = """
import json, resource, sys
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
report = rebuild(sys.argv[1], list(PROJECTIONS.values()))
print(json.dumps({"events": report.events, "seconds": report.seconds,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0,1000000,5000000,10000000")
    parser.add_argument("--database-url")
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    args = parser.parse_args()
    results = [measure(int(n), args) for n in args.sizes.split(",")]
    base = results[0]
    print(
        f"{'events':>11} {'disk B/ev':>9} {'json B/ev':>9} {'rebuild ev/s':>12} {'RSS MB':>7} "
        f"{'ingest/s':>9} {'vs base':>7} {'order p99':>9} {'packlist p99':>12} {'page 20k':>9}"
    )
    for r in results:
        print(
            f"{r['events']:>11,} {r['disk']:>9.0f} {r['json']:>9.0f} {r['rebuild']:>12,.0f} "
            f"{r['rss']:>7.0f} {r['ingest']:>9,.0f} {r['ingest'] / base['ingest']:>6.2f}x "
            f"{r['order_p99']:>7.1f}ms {r['packlist_p99']:>10.1f}ms {r['page']:>7.0f}ms"
        )


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    orders = max(ORDERS_READ, n // (PRODUCTS * EVENTS_PER_LINE))
    with seeded_database(
        args.database_url, "pp_growth", n, tenant="demo", orders=orders, products=PRODUCTS
    ) as (url, seconds):
        print(f"{n:,} events seeded in {seconds:.1f}s", flush=True)
        disk, json_size = disk_per_event(url, n)
        rebuild = rebuild_in_child(url)
        print(f"  rebuild: {rebuild}", flush=True)
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
            rate, _ = drive(base, args.ingest_seconds, 16)
        finally:
            service.terminate()
            service.wait(timeout=30)
    result = {
        "events": n,
        "disk": disk,
        "json": json_size,
        "rebuild": rebuild["events"] / rebuild["seconds"] if rebuild["seconds"] else 0.0,
        "rss": rebuild["maxrss_kb"] / 1024,
        "ingest": rate,
        **reads,
    }
    print(f"  {result}", flush=True)
    return result


def disk_per_event(url: str, n: int) -> tuple[float, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size('stored_events') "
            "+ pg_total_relation_size('packing_events'), "
            "(SELECT coalesce(avg(octet_length(state)), 0) FROM stored_events)"
        ).fetchone()
    assert row is not None
    return (float(row[0]) / n if n else 0.0), float(row[1])


def rebuild_in_child(url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def read_latencies(base: str, n: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        for o in range(ORDERS_READ):
            doc = order_document(f"o{o}", PRODUCTS)
            r = client.put(f"/pick-pack/demo/orders/o{o}", json=doc)
            assert r.status_code in (200, 201, 204), r.text
        detail = []
        for i in range(500):
            t0 = time.perf_counter()
            r = client.get(f"/pick-pack/demo/orders/o{i * 7 % ORDERS_READ}")
            detail.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
        packlist = []
        for _ in range(50):
            t0 = time.perf_counter()
            r = client.get(
                "/pick-pack/demo/orders", params={"siteCode": "main", "deliveryDate": "2024-05-01"}
            )
            packlist.append(time.perf_counter() - t0)
            assert r.status_code == 200 and len(r.json()) == ORDERS_READ, r.text
        pages = []
        for _ in range(3 if n >= PAGE else 0):
            t0 = time.perf_counter()
            r = client.get("/pick-pack/demo/events", params={"pageSize": PAGE, "pageNumber": 1})
            pages.append(time.perf_counter() - t0)
            assert r.status_code == 200 and len(r.json()) == PAGE
    return {
        "order_p99": statistics.quantiles(detail, n=100)[98] * 1000,
        "packlist_p99": statistics.quantiles(packlist, n=100)[98] * 1000,
        "page": statistics.median(pages) * 1000 if pages else 0.0,
    }


if __name__ == "__main__":
    main()
