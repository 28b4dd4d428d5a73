"""What storing a state compressed costs and saves, per packing event.

    python bench/compression.py [--states 20000]

States are written as the append writes them (ledger.adapters.encoding.stored_state) for
scans with UUID eventIds, order and product numbers; then each is compressed and read
back (ledger.adapters.compression) and, as the baseline in the same run, encoded and
decoded as JSON alone (orjson, what every write and read costs anyway). Prints the mean
sizes (and zlib's, the standard library's alternative) and the median time per state of
five passes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.harness.support import packing_event
from ledger.adapters.compression import compress_state, state_json
from ledger.adapters.encoding import stored_state
from ledger.domain.packing import Attribution


def states(n: int) -> list[bytes]:
    recorded = {"_type_": "datetime_iso", "_data_": datetime.now(UTC).isoformat()}
    out = []
    for i in range(n):
        scan = packing_event(
            str(uuid.uuid4()), order_id=f"EON{1_000_000 + i // 40}", product_id=f"p-{i % 997}"
        )
        state = stored_state(scan, Attribution(user="scanner-7"), recorded)
        assert state is not None
        out.append(state)
    return out


def per_state_us(work: Callable[[], object], n: int) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--states", type=int, default=20_000)
    args = parser.parse_args(argv)
    plain = states(args.states)
    packed = [compress_state(s) for s in plain]
    assert [state_json(p) for p in packed] == plain
    decoded = [orjson.loads(s) for s in plain]
    n = len(plain)
    zlib_size = statistics.mean(len(zlib.compress(s, 9)) for s in plain)
    print(
        f"{n:,} packing states: JSON {statistics.mean(map(len, plain)):.0f} bytes, "
        f"stored compressed {statistics.mean(map(len, packed)):.0f} bytes "
        f"(zlib at level 9 without a dictionary: {zlib_size:.0f})"
    )
    timed: list[tuple[str, Callable[[], object]]] = [
        ("baseline: orjson.dumps", lambda: [orjson.dumps(d) for d in decoded]),
        ("compress_state", lambda: [compress_state(s) for s in plain]),
        ("baseline: orjson.loads", lambda: [orjson.loads(s) for s in plain]),
        ("state_json, compressed", lambda: [state_json(p) for p in packed]),
        ("state_json, plain", lambda: [state_json(s) for s in plain]),
    ]
    for label, work in timed:
        print(f"{label:<24} {per_state_us(work, n):6.2f} us per state")


if __name__ == "__main__":
    main()
