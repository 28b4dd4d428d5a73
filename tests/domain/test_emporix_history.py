"""The made-up Emporix history a cutover rehearsal starts from (devtools/emporix_history.py):
several days, open and finished orders, weighed goods, every scan for a listed order, and
nothing in the future. Pure."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from devtools.emporix_history import history

UNTIL = date(2026, 12, 6)
NOW = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)


def test_several_days_finished_before_and_open_on_the_last() -> None:
    made = history("main", days=3, orders_per_day=12, until=UNTIL, now=NOW, seed=7)
    days = Counter(o["deliveryWindow"]["deliveryDate"] for o in made.sales_orders)
    assert days == {"2026-12-04": 12, "2026-12-05": 12, "2026-12-06": 12}
    last = [o for o in made.sales_orders if o["deliveryWindow"]["deliveryDate"] == "2026-12-06"]
    before = [o for o in made.sales_orders if o not in last]
    assert {o["status"] for o in last} == {"CREATED"}
    assert {o["status"] for o in before} <= {"COMPLETED", "DECLINED"}
    units = {e["orderUnit"] for o in made.sales_orders for e in o["entries"]}
    assert "H87" in units and units & {"GRM", "KGM"}, units

    ids = {o["id"] for o in made.sales_orders}
    assert {e["orderNumber"] for e in made.events} <= ids
    assert len({e["eventId"] for e in made.events}) == len(made.events)
    stamps = [e["timestamp"] for e in made.events]
    assert stamps == sorted(stamps) and max(stamps) < "2026-12-06T13:00:00.000Z"
    scanned_today = {e["orderNumber"] for e in made.events if e["timestamp"] >= "2026-12-06"}
    assert 0 < len(scanned_today) < len(last), "some of today's orders are not started"
    assert any(e["unit"] in ("GRM", "KGM") for e in made.events)


def test_the_same_seed_gives_the_same_history() -> None:
    one = history("main", 2, 5, UNTIL, NOW, seed=3)
    assert one == history("main", 2, 5, UNTIL, NOW, seed=3)
    assert one != history("main", 2, 5, UNTIL, NOW, seed=4)
