"""`pickpack demo`'s delivery day: realistic orders (pure, no service)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

from devtools.demo_day import delivery_day, scans_for

DAY = date(2026, 12, 1)


def test_a_day_has_several_entries_pieces_weights_and_repeated_products() -> None:
    orders = delivery_day(40, "main", DAY, random.Random(7))
    assert len({o["id"] for o in orders}) == 40
    assert all(o["siteCode"] == "main" for o in orders)
    assert all(o["delivery"]["deliveryTimeModel"]["deliveryDate"] == "2026-12-01" for o in orders)
    assert all(len(o["entries"]) >= 2 for o in orders)
    entries = [e for o in orders for e in o["entries"]]
    units = Counter(e["orderUnit"] for e in entries)
    assert units["H87"] and (units["GRM"] or units["KGM"])
    assert any(e["weightDependent"] for e in entries)
    repeated = [
        o for o in orders if len({e["productId"] for e in o["entries"]}) < len(o["entries"])
    ]
    assert repeated, "some order lists a product in two entries"
    assert all(len({e["entryId"] for e in o["entries"]}) == len(o["entries"]) for o in orders)


def test_the_same_seed_gives_the_same_day() -> None:
    assert delivery_day(5, "main", DAY, random.Random(3)) == delivery_day(
        5, "main", DAY, random.Random(3)
    )


def test_the_scans_of_an_entry_resolve_it() -> None:
    rng = random.Random(1)
    for _ in range(200):
        entry = {"totalCount": rng.randint(1, 9), "weightDependent": False}
        scans = scans_for(entry, rng)
        packed = sum(s["packedAmount"] for s in scans)
        canceled = sum(s["canceledAmount"] for s in scans)
        assert packed + canceled == entry["totalCount"]
        assert all(s["pickedAmount"] == s["packedAmount"] >= 0 for s in scans)
    weighed = scans_for({"totalCount": 500, "weightDependent": True}, rng)
    assert len(weighed) == 1 and 450 <= weighed[0]["packedAmount"] <= 550
