"""The append's own cost: Python CPU and wall time per group-commit batch.

    python bench/append.py [--batches 1500] [--batch-size 16] [--database-url URL]

Calls EventStore.append_packing_events directly (what the group-commit thread does for
each batch), on a fresh database of the embedded PostgreSQL (or on `--database-url`'s
server), with the ingest benchmark's mix: 500 orders x 7 products, unique eventIds.
The first 100 batches warm up (prepared statements, caches) and are not counted.
Prints the process's CPU time per batch and per event (this Python process), the CPU
time of the PostgreSQL backend serving the appends (read from /proc, so only where the
server runs on this machine), and the wall time per batch.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import cpu_seconds  # noqa: E402
from bench.seed import seeded_database  # noqa: E402
from devtools.harness.support import packing_event  # noqa: E402
from ledger.adapters.event_store import EventStore  # noqa: E402
from ledger.domain.packing import Attribution, PackingEvent  # noqa: E402


def scan(i: int, run: str) -> PackingEvent:
    return packing_event(f"{run}-{i}", order_id=f"o{i % 500}", product_id=f"p{i % 7}", packed=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    who = Attribution("bench", "bench")
    batches = [
        [(scan(b * args.batch_size + j, run), who) for j in range(args.batch_size)]
        for b in range(args.batches)
    ]
    warm, counted = batches[:100], batches[100:]
    with seeded_database(args.database_url, "pp_bench_append", 1) as (url, _):
        store = EventStore.from_url(url)
        try:
            for batch in warm:
                store.append_packing_events(batch)
            with store.scans.get_connection() as conn:  # the pool's one connection
                stat = f"/proc/{conn.info.backend_pid}/stat"
            backend = cpu_seconds(stat)
            cpu, wall = time.process_time(), time.perf_counter()
            for batch in counted:
                store.append_packing_events(batch)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            backend = cpu_seconds(stat) - backend
        finally:
            store.close()
    n = len(counted)
    print(
        f"{n} batches of {args.batch_size}: Python CPU {cpu / n * 1e6:.0f} us per batch, "
        f"{cpu / n / args.batch_size * 1e6:.1f} us per event; backend CPU "
        f"{backend / n * 1e6:.0f} us per batch, {backend / n / args.batch_size * 1e6:.1f} us "
        f"per event; wall {wall / n * 1e6:.0f} us per batch"
    )


if __name__ == "__main__":
    main()
