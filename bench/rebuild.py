"""Rebuild benchmark: seed N events through COPY, rebuild every projection, compare.

    python bench/rebuild.py [--events 1000000] [--database-url URL] [--plain]
                            [--baseline-tree DIR] [--repeat 1] [--existing DATABASE]

Without --database-url it starts an embedded PostgreSQL in a temporary directory (as a
new user's machine would). The rebuild runs in a child process so its peak RSS is its
own. The baseline, measured in the same run on the same stored events, is the least a
rebuild in Python must do: read every state in order, decode it (decompressing it first
when it is stored compressed) and sum the line totals in a dict. With --plain the store
holds plain JSON states (PICKPACK_COMPRESS_EVENTS=false) and one raw SQL aggregation of
the line totals straight from the stored JSON is measured too.

With --baseline-tree DIR (a checkout of another commit: `git worktree add /tmp/base C`),
the same rebuild is also run by that tree's code on the same seeded store, the two taking
turns --repeat times each, and the medians and their ratio are printed: a same-run
baseline on a machine whose load changes from one minute to the next.
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

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.seed import seeded_database
from ledger.adapters.compression import state_json

TOPIC = "ledger.events:PackingEventRecorded"
RAW_SQL = """
SELECT j->>'tenant', j->>'order_id', j->>'product_id',
       sum((j->>'picked')::int), sum((j->>'packed')::int), sum((j->>'canceled')::int), count(*)
FROM stored_events s, LATERAL (SELECT convert_from(s.state, 'UTF8')::jsonb) AS x(j)
WHERE s.topic = 'ledger.events:PackingEventRecorded'
GROUP BY 1, 2, 3
"""

CHILD = """
import json, sys, time
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
                  "maxrss_kb": peak_kb(), "slices": getattr(report, "slices", 0)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--plain", action="store_true", help="store plain JSON states")
    parser.add_argument("--baseline-tree", help="also rebuild with this checkout's code")
    parser.add_argument("--repeat", type=int, default=1, help="rebuilds per tree, in turns")
    parser.add_argument(
        "--existing",
        metavar="DATABASE",
        help="instead of seeding: rebuild the store in DATABASE on --database-url's server "
        "(say, one bench/growth.py or bench/seed.py left; its views are swapped, its "
        "events untouched)",
    )
    parser.add_argument(
        "--skip-sum",
        action="store_true",
        help="no read-decode-and-sum baseline (and no check of line_totals against it)",
    )
    parser.add_argument(
        "--baseline-timeout",
        type=float,
        metavar="SECONDS",
        help="stop the baseline tree's rebuild after SECONDS and give its time for the "
        "whole store at the rate it reached (its committed position / SECONDS), marked "
        "as extrapolated",
    )
    args = parser.parse_args()
    with _store(args) as bench_url:
        sums: dict[tuple[str, str, str], list[int]] = {}
        raw = None
        if not args.skip_sum:
            t0 = time.perf_counter()
            sums = decode_and_sum(bench_url)
            raw = time.perf_counter() - t0
            print(
                f"baseline read, decode and sum in Python: {len(sums):,} lines in {raw:.2f}s "
                f"({args.events / raw:,.0f} events/s)"
            )
        sql_seconds = None
        if args.plain and sums:
            with psycopg.connect(bench_url, autocommit=True) as conn:
                t0 = time.perf_counter()
                rows = conn.execute(RAW_SQL).fetchall()
                sql_seconds = time.perf_counter() - t0
            assert {(r[0], r[1], r[2]): r[4] for r in rows} == {k: v[1] for k, v in sums.items()}
            print(
                f"baseline raw SQL aggregation: {len(rows):,} lines in {sql_seconds:.2f}s "
                f"({args.events / sql_seconds:,.0f} events/s)"
            )
        here = Path(__file__).resolve().parent.parent
        trees = [("this tree", here)]
        if args.baseline_tree:
            trees.append(("baseline tree", Path(args.baseline_tree).resolve()))
        times: dict[str, list[float]] = {label: [] for label, _ in trees}
        digests: set[tuple[str, str]] = set()
        completed = 0
        for turn in range(args.repeat):
            for label, tree in trees if turn % 2 == 0 else list(reversed(trees)):
                limit = args.baseline_timeout if label == "baseline tree" else None
                result = _rebuild_in(tree, bench_url, limit)
                if result.get("stopped_at") is not None:
                    if not result["stopped_at"]:
                        print(f"rebuild by {label}: stopped before its first commit")
                        continue
                    rate = result["stopped_at"] / result["seconds"]
                    times[label].append(args.events / rate)
                    print(
                        f"rebuild by {label}: stopped after {result['seconds']:.0f}s at "
                        f"position {result['stopped_at']:,.0f} = {rate:,.0f} events/s; at "
                        f"that rate all {args.events:,} events take "
                        f"{args.events / rate:.0f}s (extrapolated), load "
                        f"{os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
                    continue
                times[label].append(result["seconds"])
                digests.add(views_digest(bench_url))
                completed += 1
                rate = result["events"] / result["seconds"]
                slices = result.get("slices") or 0
                print(
                    f"rebuild by {label} (line_totals + order_status, "
                    f"{f'{slices} slices of orders' if slices else 'one pass'}): "
                    f"{result['events']:,} events in {result['seconds']:.1f}s = "
                    f"{rate:,.0f} events/s, peak RSS {result['maxrss_kb'] / 1024:.0f} MB, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        if args.baseline_tree and all(times.values()):
            mine, theirs = (statistics.median(times[label]) for label, _ in trees)
            print(
                f"median rebuild time: this tree {mine:.1f}s, baseline tree {theirs:.1f}s "
                f"({args.events / mine:,.0f} against {args.events / theirs:,.0f} events/s): "
                f"ratio this/baseline {mine / theirs:.2f}"
            )
        mine = statistics.median(times["this tree"])
        if raw is not None:
            print(f"ratio rebuild/baseline time: {mine / raw:.2f}x")
        if sql_seconds is not None:
            print(f"ratio rebuild/raw-SQL time: {mine / sql_seconds:.2f}x")
        if sums:
            with psycopg.connect(bench_url) as conn:
                view = conn.execute("SELECT count(*), sum(packed) FROM line_totals").fetchone()
                raw_packed = sum(v[1] for v in sums.values())
            assert view == (len(sums), raw_packed), (view, len(sums), raw_packed)
            print("check: rebuilt line_totals equal the baseline's sums")
        assert len(digests) <= 1, digests
        print(f"check: the {completed} rebuilds run to the end gave the same views, row for row")


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[str]:
    """The store to rebuild: an existing database, or one seeded for the run."""
    if args.existing:
        server = args.database_url or "postgresql://postgres@127.0.0.1:5432/postgres"
        url = psycopg.conninfo.make_conninfo(server, dbname=args.existing)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM stored_events").fetchone()
        if not row or row[0] != args.events:
            raise SystemExit(f"{args.existing} holds {row and row[0]:,} events, not --events")
        print(f"store: {args.existing}, {args.events:,} events (load {os.getloadavg()[0]:.1f})")
        yield url
        return
    with seeded_database(
        args.database_url, "pp_bench_rebuild", args.events, compress=not args.plain
    ) as (url, seconds):
        print(
            f"seeded {args.events:,} events ({'plain' if args.plain else 'compressed'} "
            f"states) in {seconds:.1f}s ({args.events / seconds:,.0f} events/s through COPY)"
        )
        yield url


def _rebuild_in(tree: Path, url: str, limit: float | None = None) -> dict[str, float]:
    """The rebuild run by `tree`'s code (its packages first on the path), in a child.

    With `limit`, a child still running after `limit` seconds is killed: the result is
    the position it had committed (`stopped_at`), and what it left is cleared so the
    next rebuild starts afresh.
    """
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tree,
    )
    try:
        out, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        seconds = time.perf_counter() - started
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT min(position) FROM projection_rebuilds").fetchone()
            conn.execute("DELETE FROM projection_rebuilds")
            conn.execute("DROP TABLE IF EXISTS line_totals__rebuild, order_status__rebuild")
        return {"stopped_at": float(row[0] if row and row[0] else 0), "seconds": seconds}
    if child.returncode:
        raise SystemExit(f"the rebuild by {tree} failed: {err}")
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def views_digest(url: str) -> tuple[str, str]:
    """A digest of every row of each view, every column, in key order."""
    with psycopg.connect(url) as conn:
        lines = conn.execute(
            "SELECT md5(string_agg(md5(t::text), '' ORDER BY tenant, order_id, product_id, "
            "unit)) FROM line_totals t"
        ).fetchone()
        orders = conn.execute(
            "SELECT md5(string_agg(md5(o::text), '' ORDER BY tenant, order_id)) FROM order_status o"
        ).fetchone()
    return (str(lines and lines[0]), str(orders and orders[0]))


def decode_and_sum(url: str) -> dict[tuple[str, str, str], list[int]]:
    """Every packing state read in order, decoded and summed per line: [picked, packed,
    canceled] by (tenant, order, product)."""
    sums: dict[tuple[str, str, str], list[int]] = {}
    loads, json = orjson.loads, state_json
    with psycopg.connect(url) as conn, conn.cursor("states", binary=True) as cur:
        cur.itersize = 20_000
        cur.execute(
            "SELECT state FROM stored_events WHERE topic = %s ORDER BY notification_id", (TOPIC,)
        )
        for (state,) in cur:
            d = loads(json(state))
            key = (d["tenant"], d["order_id"], d["product_id"])
            line = sums.get(key)
            if line is None:
                line = sums[key] = [0, 0, 0]
            line[0] += d["picked"]
            line[1] += d["packed"]
            line[2] += d["canceled"]
    return sums


if __name__ == "__main__":
    main()
