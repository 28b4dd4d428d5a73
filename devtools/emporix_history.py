"""A tenant's history on Emporix, made up for a cutover rehearsal (pure, no I/O).

`history(...)` gives what `pickpack fake-emporix --tenant T --days N` serves: for each of
the N delivery days up to `until`, a day of orders as `pickpack demo` makes them (pieces
and weighed goods, some products in two entries), as the Order Service's salesorders, and
the scans Emporix recorded for them (its GET /events items, OrderEntryEventResponse):

- days before `until`: every order packed (a weighed line a little off its weight, now
  and then a line short and the rest cancelled), or cancelled half-way; those salesorders
  are COMPLETED (or DECLINED), so an import of the open orders leaves them out, and their
  scans are history for orders the ledger does not know (kept, decision 4);
- the day `until`: a third packed, a third half-packed, the rest not started, all of them
  open (CREATED), their scans during the hours before `now`: what a pack station still
  has work on at the moment of the switch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from devtools.demo_day import delivery_day, scans_for

PICKERS = ("picker-a", "picker-b", "picker-c")


@dataclass
class History:
    sales_orders: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # in recording order


def history(
    site: str,
    days: int,
    orders_per_day: int,
    until: date,
    now: datetime,
    seed: int = 7,
) -> History:
    """The made-up history; the same arguments give the same history."""
    rng = random.Random(seed)
    made = History()
    for back in range(days - 1, -1, -1):
        day = until - timedelta(days=back)
        today = back == 0
        for n, order in enumerate(delivery_day(orders_per_day, site, day, rng)):
            if today:
                # the first third packed, the next third half-way, the rest untouched
                share = 1.0 if n < orders_per_day / 3 else 0.5 if n < 2 * orders_per_day / 3 else 0
                status, cancelled = "CREATED", False
            else:
                cancelled = rng.random() < 0.08
                share, status = (0.5, "DECLINED") if cancelled else (1.0, "COMPLETED")
            made.sales_orders.append(sales_order(order, status))
            start = (
                now - timedelta(hours=3)
                if today
                else datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
                + timedelta(minutes=rng.randrange(600))
            )
            made.events += _scans(order, share, start, now if today else None, rng)
    made.events.sort(key=lambda e: e["timestamp"])
    return made


def _scans(
    order: dict[str, Any],
    share: float,
    start: datetime,
    latest: datetime | None,
    rng: random.Random,
) -> list[dict[str, Any]]:
    entries = order["entries"][: round(len(order["entries"]) * share)]
    picker = rng.choice(PICKERS)
    out: list[dict[str, Any]] = []
    at = start
    for entry in entries:
        for k, amounts in enumerate(scans_for(entry, rng)):
            at += timedelta(seconds=rng.randint(20, 90))
            if latest is not None and at >= latest:
                at = latest - timedelta(seconds=1)
            out.append(
                {
                    "eventId": f"{order['id']}-{entry['entryId']}-{k}",
                    "orderNumber": order["id"],
                    "productId": entry["productId"],
                    "unit": entry["orderUnit"],
                    "site": order["siteCode"],
                    "supplierId": picker,
                    "user": picker,
                    "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.")
                    + f"{at.microsecond // 1000:03d}Z",
                    **amounts,
                }
            )
    return out


def sales_order(order: dict[str, Any], status: str) -> dict[str, Any]:
    """The Order Service's salesorder for a pick-pack order document (emporix-order-api.yml)."""
    delivery = order["delivery"]
    window = delivery["deliveryWindow"]
    day = delivery["deliveryTimeModel"]["deliveryDate"]
    return {
        "id": order["id"],
        "status": status,
        "siteCode": order["siteCode"],
        "currency": order.get("currency", "EUR"),
        "customer": dict(order["customer"]),
        "deliveryWindow": {
            "deliveryDate": day,
            "deliveryCycle": f"{day}-{window['deliveryTimeFrom'][11:13]}-{order['siteCode']}",
            "deliveryTimeRange": {
                "timeFrom": window["deliveryTimeFrom"][11:16],
                "timeTo": window["deliveryTimeTo"][11:16],
            },
        },
        "entries": [
            {
                "id": e["entryId"],
                "product": {"id": e["productId"], "name": e["productName"]},
                "orderedAmount": e["totalCount"],
                "orderUnit": e["orderUnit"],
            }
            for e in order["entries"]
        ],
    }
