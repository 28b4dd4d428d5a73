"""`pickpack demo`'s delivery day: realistic orders and the scans that pack them (pure).

Several entries per order, some products in two entries, pieces and weights; a weighed
entry is weighed once, a little off the ordered weight; now and then an entry runs short
and the rest is cancelled.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

# (productId, name, orderUnit, weight-dependent, how many a customer orders)
PRODUCTS: tuple[tuple[str, str, str, bool, tuple[int, int]], ...] = (
    ("apple-gala", "Gala apples", "H87", False, (2, 8)),
    ("banana", "Bananas", "H87", False, (3, 7)),
    ("milk-1l", "Milk 1 l", "H87", False, (1, 4)),
    ("yoghurt-500", "Yoghurt 500 g", "H87", False, (1, 3)),
    ("bread-rye", "Rye bread", "H87", False, (1, 2)),
    ("eggs-10", "Eggs, box of 10", "H87", False, (1, 2)),
    ("water-6", "Water, six bottles", "H87", False, (1, 3)),
    ("coffee-beans", "Coffee beans 1 kg", "H87", False, (1, 2)),
    ("pasta-500", "Pasta 500 g", "H87", False, (1, 5)),
    ("tomato", "Tomatoes", "H87", False, (4, 10)),
    ("gouda", "Gouda, by weight", "GRM", True, (200, 800)),
    ("ham-sliced", "Sliced ham, by weight", "GRM", True, (100, 400)),
    ("salmon", "Salmon fillet, by weight", "GRM", True, (250, 700)),
    ("potatoes", "Potatoes, loose", "KGM", True, (1, 5)),
)
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dario", "Eva", "Femi", "Greta", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Meyer", "Novak", "Okafor", "Rossi", "Silva", "Tanaka", "Weber", "Zhang")
PAUSE = (1.5, 5.0)  # seconds between a scanner's scans at speed 1
RETRY_SHARE = 0.06  # scans sent twice, as after a lost answer
CANCEL_SHARE = 0.06  # orders cancelled half-way
SHORT_SHARE = 0.08  # entries short of stock: the rest cancelled


def delivery_day(
    count: int, site: str, day: date, rng: random.Random, first: int = 1
) -> list[dict[str, Any]]:
    """`count` order documents for `site` on `day`, in delivery windows of two hours,
    numbered from `first` (D1206-001 is number 1 of 6 December)."""
    orders = []
    for n in range(first, first + count):
        start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(
            hours=2 * rng.randrange(6)
        )
        picks = rng.sample(PRODUCTS, rng.randint(2, 5))
        entries = []
        for product_id, name, unit, weighted, (low, high) in picks:
            entries.append(_entry(product_id, name, unit, weighted, rng.randint(low, high)))
        if rng.random() < 0.3:  # the same product again, as a second line (a promotion)
            product_id, name, unit, weighted, (low, high) = picks[0]
            entries.append(_entry(product_id, name, unit, weighted, rng.randint(low, high)))
        for i, entry in enumerate(entries, 1):
            entry["entryId"] = f"e{i}"
        orders.append(
            {
                "id": order_number(day, n),
                "siteCode": site,
                "currency": "EUR",
                "customer": {
                    "firstName": rng.choice(FIRST_NAMES),
                    "lastName": rng.choice(LAST_NAMES),
                },
                "delivery": {
                    "deliveryTimeModel": {"deliveryDate": day.isoformat()},
                    "deliveryWindow": {
                        "deliveryTimeFrom": _iso(start),
                        "deliveryTimeTo": _iso(start + timedelta(hours=2)),
                    },
                },
                "entries": entries,
            }
        )
    return orders


def order_number(day: date, n: int) -> str:
    return f"D{day:%m%d}-{n:03d}"


def _entry(product_id: str, name: str, unit: str, weighted: bool, total: int) -> dict[str, Any]:
    return {
        "productId": product_id,
        "productName": name,
        "orderUnit": unit,
        "totalCount": total,
        "weightDependent": weighted,
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def scans_for(entry: dict[str, Any], rng: random.Random) -> list[dict[str, int]]:
    """The amounts a scanner sends for one entry: a few scans, sometimes a short ending."""
    total = int(entry["totalCount"])
    if entry.get("weightDependent"):  # weighed once, a little off the ordered weight
        weighed = max(1, round(total * rng.uniform(0.9, 1.1)))
        return [{"pickedAmount": weighed, "packedAmount": weighed, "canceledAmount": 0}]
    short = rng.random() < SHORT_SHARE and total > 1
    packable = total - 1 if short else total
    scans = []
    while packable > 0:
        step = min(packable, rng.randint(1, 3))
        scans.append({"pickedAmount": step, "packedAmount": step, "canceledAmount": 0})
        packable -= step
    if short:
        scans.append({"pickedAmount": 0, "packedAmount": 0, "canceledAmount": 1})
    return scans
