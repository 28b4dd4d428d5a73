"""What presenting a packlist costs in Python, against a baseline commit's code.

    python bench/packlist_items.py [--orders 200] [--runs 30] [--baseline c16cc88]

Builds a demo day of `--orders` orders (pieces and weighed goods, devtools/demo_day.py),
packs each as `pickpack demo` would, and times `present_packlist_item` over all of them:
this tree's (totals per unit, lines complete) and the `--baseline` commit's
(ledger/domain/order_document.py read with `git show`), alternating, `--runs` times each.
Prints both medians and their ratio. No database: the SQL read is the same for both.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.demo_day import delivery_day, scans_for  # noqa: E402
from ledger.domain import counting  # noqa: E402
from ledger.domain import order_document as current  # noqa: E402


def baseline(commit: str) -> ModuleType:
    text = subprocess.run(
        ["git", "show", f"{commit}:ledger/domain/order_document.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_order_document.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("baseline_order_document", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(orders: int) -> list[dict[str, Any]]:
    rng = random.Random(1)
    out = []
    for order in delivery_day(orders, "main", date(2026, 12, 1), rng):
        lines: counting.Lines = {}
        for e in order["entries"]:
            for s in scans_for(e, rng):
                counting.add(
                    lines,
                    e["productId"],
                    e["orderUnit"],
                    s["pickedAmount"],
                    s["packedAmount"],
                    s["canceledAmount"],
                )
        out.append(
            {
                "order_id": order["id"],
                "document": order,
                "packing_status": "IN_PROGRESS",
                "products_total": 0,
                "products_packed": 0,
                "products_canceled": 0,
                "assignees": [],
                "packaging": [],
                "holding_area_number": None,
                "lines": lines,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline", default="c16cc88")
    args = parser.parse_args()
    day = rows(args.orders)
    versions = {"baseline": baseline(args.baseline), "this tree": current}
    times: dict[str, list[float]] = {name: [] for name in versions}
    for run in range(args.runs + 1):
        for name, module in versions.items():
            start = time.perf_counter()
            for row in day:
                module.present_packlist_item(row, row["lines"])
            if run:  # the first round warms up
                times[name].append((time.perf_counter() - start) * 1000)
    base, now = (statistics.median(times[n]) for n in versions)
    print(
        f"{args.orders}-order packlist presented, median of {args.runs}: "
        f"baseline {args.baseline} {base:.2f} ms, this tree {now:.2f} ms, ratio {now / base:.2f}"
    )


if __name__ == "__main__":
    main()
