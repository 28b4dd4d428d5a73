"""A rebuild by slices of orders gives exactly the views the live projections keep.

The store mixes what the views fold: several tenants, orders registered (and one
registered again), scans in pieces and in weighed units, corrections up and down,
status changes, assignees, packaging, finishes with holding areas, cancellations with
scans after them, and scans of orders never registered; every order's facts spread over
the whole store. The rebuild is given a bound far below the store's rows, so it goes on
by slices; its tables must equal, column for column, those the live runner built.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from devtools.harness.support import packing_event
from ledger.adapters.event_store import EventStore
from ledger.domain.corrections import Correction
from ledger.domain.packing import Attribution
from ledger.services import order_commands, story
from projections.base import Projection, Recorded
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import step
from tests.helpers.accumulators import Delegating

GROUP = list(PROJECTIONS.values())
TENANTS = ("acme", "bolt", "cora")
ORDERS = 60  # per tenant, each with an id of its own
BOUND = 150  # rows; the store holds about 180 orders x 6 + 460 lines


def document(order_id: str, weighed: bool) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {"entryId": "a", "productId": "p0", "totalCount": 3, "orderUnit": "H87"},
        {"entryId": "b", "productId": "p1", "totalCount": 2},
    ]
    if weighed:  # sold by weight: scanned in grams, counted in kilograms
        entries.append(
            {"entryId": "c", "productId": "w", "totalCount": 2, "orderUnit": "KGM",
             "weightDependent": True}
        )  # fmt: skip
    return {
        "id": order_id,
        "siteCode": "main",
        "delivery": {
            "deliveryTimeModel": {"deliveryDate": "2024-05-01"},
            "deliveryWindow": {"deliveryTimeTo": "2024-05-01T12:00:00Z"},
        },
        "entries": entries,
    }


def record_mixed_store(url: str) -> None:
    """Rounds over every order of every tenant, so each order's facts are spread."""
    store = EventStore.from_url(url, pool_size=1)
    try:
        orders = [(t, f"{t}-{i}") for i in range(ORDERS) for t in TENANTS]
        for n, (t, o) in enumerate(orders):
            if n % 6 != 5:  # every sixth order is known from its scans only
                order_commands.register(store, t, o, document(o, weighed=n % 2 == 0))
        for round_ in range(4):
            scans = []
            for n, (t, o) in enumerate(orders):
                scans.append(scan(t, o, f"{round_}", "p0", "H87", packed=1))
                scans.append(scan(t, o, f"{round_}b", "p1", "H87", picked=1, packed=n % 2))
                if n % 2 == 0:
                    scans.append(scan(t, o, f"{round_}w", "w", "GRM", packed=500 + 10 * n))
            store.append_packing_events([(s, Attribution("u")) for s in scans])
            for n, (t, o) in enumerate(orders):
                step_of_order(store, round_, n, t, o)
    finally:
        store.close()


def scan(tenant: str, order: str, key: str, product: str, unit: str, **amounts: int) -> Any:
    return packing_event(
        f"{order}-{key}-{product}",
        tenant=tenant,
        order_id=order,
        product_id=product,
        unit=unit,
        event_time=f"2024-05-01T10:{len(key):02d}:{int(key[0]) * 5:02d}.000Z",
        **amounts,
    )


def step_of_order(store: EventStore, round_: int, n: int, t: str, o: str) -> None:
    """Commands on some orders in some rounds: each kind of order fact, and corrections."""
    registered = n % 6 != 5
    if round_ == 0 and registered and n % 3 == 0:
        order_commands.add_assignee(store, t, o, {"id": f"a{n}", "name": "Ann"}, force=False)
    if round_ == 1 and n % 4 == 1:
        fix = Correction(f"c{n}", "p0", 0, -1, 1, "H87", "miscounted")
        story.correct(store, t, o, fix, "u", None)
    if round_ == 1 and n % 5 == 2:
        story.correct(store, t, o, Correction(f"d{n}", "p1", 2, 1, 0, "H87", "found"), "u", None)
    if round_ == 2 and registered and n % 3 == 0:
        order_commands.change_packaging(store, t, o, [{"type": "box", "count": 1 + n % 2}])
        order_commands.remove_assignee(store, t, o, f"a{n}")
    if round_ == 2 and registered and n % 8 == 4:
        order_commands.register(store, t, o, document(o, weighed=True))  # a new document
    cancelled = registered and n % 7 == 3
    if round_ == 2 and cancelled:
        order_commands.change_status(store, t, o, "CANCELLED", "u")  # later scans change nothing
    if round_ == 3 and registered and not cancelled and n % 5 == 0:
        order_commands.finish(store, t, o, "u")
    if round_ == 3 and registered and not cancelled and n % 9 == 1:
        order_commands.change_status(store, t, o, "IN_PROGRESS", "u")


def catch_up(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while step(conn, GROUP, 17):
            pass


def tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of both views, every column, in key order."""
    with psycopg.connect(url) as conn:
        return {
            "line_totals": conn.execute(
                "SELECT * FROM line_totals ORDER BY tenant, order_id, product_id, unit"
            ).fetchall(),
            "order_status": conn.execute(
                "SELECT * FROM order_status ORDER BY tenant, order_id"
            ).fetchall(),
        }


@pytest.fixture
def mixed(db_url: str) -> Iterator[tuple[str, dict[str, list[tuple[Any, ...]]]]]:
    record_mixed_store(db_url)
    catch_up(db_url)
    live = tables(db_url)
    assert len(live["order_status"]) == len(TENANTS) * ORDERS
    statuses = {row[4] for row in live["order_status"]}
    assert {"CANCELLED", "PACKED", "IN_PROGRESS"} <= statuses, statuses
    yield db_url, live


def test_a_rebuild_by_slices_equals_the_live_views(
    mixed: tuple[str, dict[str, list[tuple[Any, ...]]]],
) -> None:
    url, live = mixed
    report = rebuild(url, GROUP, chunk=20, max_rows=BOUND)
    # (Two of these 180 order ids fall in the first slice, which measures the rest.)
    assert report.slices >= 4, "the bound is far below the store's rows: it goes by slices"
    assert tables(url) == live
    # And the live runner goes on from where the rebuild left the views.
    catch_up(url)
    assert tables(url) == live


@dataclass
class Failing(Delegating):
    """An accumulator that fails its `after`-th fold: a rebuild killed mid-way."""

    folds: list[int]
    after: int

    def fold(self, curs: Any, events: list[Recorded]) -> None:
        self.folds.append(1)
        if len(self.folds) == self.after:
            raise RuntimeError("killed")
        self.inner.fold(curs, events)


@dataclass
class FailingProjection:
    inner: Projection
    after: int

    def __post_init__(self) -> None:
        self.name, self.tables = self.inner.name, self.inner.tables
        self.handles, self.ignores = self.inner.handles, self.inner.ignores
        self.folds: list[int] = []

    def accumulator(self, suffix: str = "") -> Failing:
        return Failing(self.inner.accumulator(suffix), self.folds, self.after)


def test_a_rebuild_killed_between_slices_resumes_at_the_next_one(
    mixed: tuple[str, dict[str, list[tuple[Any, ...]]]],
) -> None:
    url, live = mixed
    failing: list[Projection] = [FailingProjection(p, after=150) for p in GROUP]
    with pytest.raises(RuntimeError, match="killed"):
        rebuild(url, failing, chunk=5, max_rows=BOUND)
    with psycopg.connect(url) as conn:
        done = conn.execute("SELECT DISTINCT next FROM projection_rebuild_slices").fetchall()
    assert len(done) == 1 and done[0][0] >= 2, done  # some slices had committed

    report = rebuild(url, GROUP, chunk=5, max_rows=BOUND)
    assert report.slices >= 4
    assert tables(url) == live


def test_events_recorded_during_a_sliced_rebuild_are_in_its_views(
    mixed: tuple[str, dict[str, list[tuple[Any, ...]]]],
) -> None:
    url, _ = mixed
    late = [
        scan("acme", "acme-0", "9", "p0", "H87", packed=2),  # an order the slices had written
        scan("bolt", "new", "9", "p1", "H87", picked=1),  # and one they never saw
    ]
    sent: list[int] = []

    def record_once(position: int, head: int) -> None:
        if not sent:
            store = EventStore.from_url(url, pool_size=1)
            try:
                sent.extend(store.append_packing_events([(s, Attribution("u")) for s in late]))
            finally:
                store.close()

    report = rebuild(url, GROUP, chunk=20, max_rows=BOUND, progress=record_once)
    assert sent and report.slices >= 4
    sliced = tables(url)
    # The same store rebuilt in position order, as before slices.
    rebuild(url, GROUP, chunk=20, max_rows=BOUND, slices=False)
    assert tables(url) == sliced
    assert any(row[1] == "new" for row in sliced["order_status"])
