"""Retention benchmark: what the views' baseline costs an archive, and what it saves a rebuild.

    nice -n 10 python bench/retention.py [--events 1000000] [--partition 200000]
                                         [--archive 800000] [--database-url URL]
                                         [--local] [--orders 20000] [--compare-slices
                                         [--max-rows N] [--rounds 2]]

Seeds N scans through COPY (bench/seed.py) into a store partitioned every --partition
positions, rebuilds the views (a full rebuild of the whole store: the same-run baseline
for the rebuild after the archive, and what lets the archive take the partitions: every
projection has applied them), then copies the database (CREATE DATABASE ... TEMPLATE) so
both archives start from the same store, and:

1. archives the partitions up to --archive in the copy with a fold that does nothing (the
   archive as it was before the baselines: files, verify, record, drop), and in the
   original with the baseline fold (projections/baseline.py), timing each;
2. rebuilds the views of the archived original (from the baseline, replaying the
   retained partitions) and checks they equal, row for row, the views before the archive;
3. with --compare-slices, rebuilds it again from the baseline in turns, --rounds times
   each, in position order (`slices=False`, the only way before slices started from a
   baseline) and by slices of orders, with --orders orders seeded and the rebuild's row
   bound at --max-rows, so that the retained store's rows do not fit and the rebuild goes
   by slices; medians, their ratio, and the views checked after each.

The archives run with settle=0: no serving process caches the cut-off here, and the 11 s
wait would be the same in both. The databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rebuild import views_digest
from bench.seed import seed
from ledger.adapters import partitions
from ledger.adapters.migrate import migrate
from ledger.services.archive import archive
from projections.baseline import fold
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.replaying import MAX_ROWS

NAME = "pp_bench_retention"


def _no_fold(conn: Any, upper: int, say: Any) -> int:
    """The archive without a baseline: nothing folded."""
    return 0


def _load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partition", type=int, default=200_000, help="positions a partition")
    parser.add_argument("--archive", type=int, default=800_000, help="archive up to position")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--local",
        action="store_true",
        help="each order's scans consecutive (a packing floor) instead of every order "
        "scanned in every partition (the worst case for the baseline)",
    )
    parser.add_argument("--orders", type=int, default=20_000, help="orders seeded")
    parser.add_argument(
        "--compare-slices",
        action="store_true",
        help="after the archive, rebuild from the baseline in position order and by slices",
    )
    parser.add_argument("--max-rows", type=int, default=MAX_ROWS, help="the rebuild's row bound")
    parser.add_argument("--rounds", type=int, default=2, help="rebuilds of each kind, in turns")
    args = parser.parse_args()
    server = args.database_url
    names = (NAME, NAME + "_nofold")
    with psycopg.connect(server, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NAME)))
    url, other = (psycopg.conninfo.make_conninfo(server, dbname=n) for n in names)
    try:
        migrate(url)
        partitions.resize(url, args.partition)
        partitions.ensure_ahead(url, ahead=args.events // args.partition + 2)
        seconds = seed(url, args.events, orders=args.orders, local=args.local)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            count = len(partitions.partitions(conn))
        shape = "orders local" if args.local else "every order in every partition"
        print(
            f"seeded {args.events:,} scans ({shape}) in {seconds:.1f}s, {count} partitions "
            f"({_load()})"
        )

        group = list(PROJECTIONS.values())
        t0 = time.perf_counter()
        full = rebuild(url, group)
        full_s = time.perf_counter() - t0
        before = views_digest(url)
        print(
            f"full rebuild before the archive: {full.events:,} events in {full_s:.1f}s "
            f"({full.slices or 'no'} slices; {_load()})",
            flush=True,
        )
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(names[1]), sql.Identifier(NAME)
                )
            )

        with tempfile.TemporaryDirectory(prefix="pp-retention-") as scratch:
            timings = {}
            for label, target, baseline in (
                ("without the baseline fold", other, _no_fold),
                ("with the baseline fold", url, fold),
            ):
                t0 = time.perf_counter()
                done = archive(
                    target, Path(scratch) / label.replace(" ", "-"), up_to=args.archive,
                    baseline=baseline, settle=0,
                )  # fmt: skip
                timings[label] = time.perf_counter() - t0
                facts = sum(a.facts for a in done)
                print(
                    f"archive {label}: {len(done)} partitions, {facts:,} facts in "
                    f"{timings[label]:.1f}s ({_load()})",
                    flush=True,
                )
            added = timings["with the baseline fold"] - timings["without the baseline fold"]
            print(
                f"the baseline fold adds {added:.1f}s to the archive "
                f"({timings['with the baseline fold'] / timings['without the baseline fold']:.2f}x)"
            )

        t0 = time.perf_counter()
        after = rebuild(url, group)
        after_s = time.perf_counter() - t0
        print(
            f"rebuild after the archive, from the baseline at {after.baseline:,}: "
            f"{after.events:,} events in {after_s:.1f}s against {full_s:.1f}s for the full "
            f"rebuild before it ({after_s / full_s:.2f}x; {_load()})"
        )
        assert views_digest(url) == before, "the views after the rebuild differ"
        print("check: the rebuild after the archive gave the views before it, row for row")
        if args.compare_slices:
            _compare_slices(url, group, before, args.max_rows, args.rounds)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _compare_slices(
    url: str, group: list[Any], before: tuple[str, str], max_rows: int, rounds: int
) -> None:
    """Rebuilds from the baseline in position order and by slices, in turns."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for turn in range(rounds):
        for sliced in (False, True) if turn % 2 == 0 else (True, False):
            t0 = time.perf_counter()
            report = rebuild(url, group, max_rows=max_rows, slices=sliced)
            took = time.perf_counter() - t0
            times[sliced].append(took)
            assert views_digest(url) == before, "the views after the rebuild differ"
            print(
                f"rebuild from the baseline at {report.baseline:,}, "
                f"{f'{report.slices} slices' if report.slices else 'position order'}: "
                f"{report.events:,} events in {took:.1f}s ({_load()})",
                flush=True,
            )
    plain, by_slices = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"median: position order {plain:.1f}s, by slices {by_slices:.1f}s: ratio "
        f"{by_slices / plain:.2f} (max_rows {max_rows:,}); every rebuild gave the views "
        "before the archive, row for row"
    )


if __name__ == "__main__":
    main()
