"""The projections' own cost: CPU per event of a projection step, Python and PostgreSQL.

    python bench/views.py [--projections line_totals,order_status] [--events 60000]
                          [--step 500] [--documents N] [--database-url URL]

On a fresh database (embedded PostgreSQL, or `--database-url`'s server), appends the
ingest benchmark's mix (500 orders x 7 products, unique eventIds) in batches of 400 and
after each batch runs projection steps (at most `--step` events each, the named
projections together, keeping accumulators between steps as the live runner does)
until they have caught up. With `--documents N`, each order is first registered with a
document of N entries (as real orders are). Prints the Python CPU of the steps and the
CPU of the steps' PostgreSQL backend, per event.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.append import scan  # noqa: E402
from bench.cpu import cpu_seconds  # noqa: E402
from bench.seed import order_document, seeded_database  # noqa: E402
from ledger.adapters.event_store import EventStore  # noqa: E402
from ledger.domain import orders  # noqa: E402
from ledger.domain.packing import Attribution  # noqa: E402
from projections.registry import PROJECTIONS  # noqa: E402
from projections.runner import Kept, step  # noqa: E402

BATCH = 400
ORDERS = 500  # bench.append.scan's orders


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projections", default=",".join(PROJECTIONS))
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--step", type=int, default=500)
    parser.add_argument(
        "--documents",
        type=int,
        default=0,
        help="register each order first, with a document of this many entries",
    )
    parser.add_argument("--database-url")
    args = parser.parse_args()
    group = [PROJECTIONS[name] for name in args.projections.split(",")]
    run = uuid.uuid4().hex[:8]
    who = Attribution("bench", "bench")
    batches = args.events // BATCH
    with seeded_database(args.database_url, "pp_bench_views", 1) as (url, _):
        store = EventStore.from_url(url)
        views = psycopg.connect(url, autocommit=True)
        try:
            if args.documents:
                for o in range(ORDERS):
                    doc = order_document(f"o{o}", args.documents)
                    store.run_order_command(
                        "demo", f"o{o}", lambda c, doc=doc: orders.register(c.state, doc)
                    )
                while step(views, group, args.step):
                    pass
            backend = views.info.backend_pid
            kept: dict[str, Kept] = {}  # as the live runner keeps its accumulators
            python = 0.0
            started = cpu_seconds(f"/proc/{backend}/stat")
            for b in range(batches):
                store.append_packing_events([(scan(b * BATCH + j, run), who) for j in range(BATCH)])
                cpu = time.process_time()
                while step(views, group, args.step, kept):
                    pass
                python += time.process_time() - cpu
            postgres = cpu_seconds(f"/proc/{backend}/stat") - started
        finally:
            views.close()
            store.close()
    n = batches * BATCH
    print(
        f"{args.projections}, {n:,} events: runner Python {python / n * 1e6:.1f} us/event, "
        f"views backend {postgres / n * 1e6:.1f} us/event"
    )


if __name__ == "__main__":
    main()
