"""A rebuild's memory stays bounded as the store's lines grow: it flushes past a row bound.

The accumulators hold one row per line (and per order) folded since their last flush;
a store with more lines than the bound is replayed in several flushes, and the views it
swaps in equal the live ones.
"""

from __future__ import annotations

import sys
import tracemalloc
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from devtools.harness.support import packing_event, view_orders, view_totals
from ledger.adapters.event_store import EventStore
from ledger.domain.events import PackingEventRecorded, restored
from ledger.domain.packing import Attribution
from projections.base import Accumulator, Projection, Recorded
from projections.line_totals import LineTotals
from projections.order_status import OrderStatus, OrderStatusAccumulator
from projections.rebuild import MAX_ROWS as MAX_ROWS_DEFAULT
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import step
from tests.helpers.accumulators import Delegating

LINES = 300  # 150 orders x 2 products, 2 events each
EVENTS = 2 * LINES
CHUNK = 20
MAX_ROWS = 50


@dataclass
class Watched(Delegating):
    """An accumulator reporting, after each fold, the rows every accumulator holds."""

    all: list[Watched]
    seen: list[int]

    def fold(self, curs: Any, events: list[Recorded]) -> None:
        self.inner.fold(curs, events)
        if self is self.all[-1]:  # the chunk is folded into every accumulator
            self.seen.append(sum(w.inner.rows() for w in self.all))


@dataclass
class WatchedProjection:
    inner: Projection
    all: list[Watched]
    seen: list[int]

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.tables = self.inner.tables
        self.handles = self.inner.handles
        self.ignores = self.inner.ignores

    def accumulator(self, suffix: str = "") -> Watched:
        watched = Watched(self.inner.accumulator(suffix), self.all, self.seen)
        self.all.append(watched)
        return watched


def test_a_rebuild_over_more_lines_than_its_bound_holds_at_most_the_bound(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        scans = [
            packing_event(f"e{i}", order_id=f"o{i % 150}", product_id=f"p{i // 150 % 2}", packed=1)
            for i in range(EVENTS)
        ]
        for i in range(0, EVENTS, 100):
            store.append_packing_events([(s, Attribution()) for s in scans[i : i + 100]])
    finally:
        store.close()
    with psycopg.connect(db_url, autocommit=True) as conn:
        for projection in PROJECTIONS.values():
            while step(conn, projection, 100):
                pass
    live_totals, live_orders = view_totals(db_url), view_orders(db_url)
    assert len(live_totals) == LINES

    accs: list[Watched] = []
    seen: list[int] = []
    group: list[Projection] = [WatchedProjection(p, accs, seen) for p in PROJECTIONS.values()]
    report = rebuild(db_url, group, chunk=CHUNK, max_rows=MAX_ROWS)

    assert report.events == EVENTS
    # Every line and order was held at some point, never all at once: at most the bound
    # plus one chunk's new rows in each accumulator (the bound is checked per chunk; an
    # order state counts as STATE_WEIGHT rows).
    assert max(seen) <= MAX_ROWS + CHUNK * (1 + OrderStatusAccumulator.STATE_WEIGHT)
    assert max(seen) > MAX_ROWS  # the store is larger than the bound
    assert view_totals(db_url) == live_totals
    assert view_orders(db_url) == live_orders


class _NoRows:
    """A cursor for an order_status accumulator folding into an empty table."""

    def execute(self, *args: Any, **kwargs: Any) -> _NoRows:
        return self

    def fetchall(self) -> list[Any]:
        return []


def _events(orders: int, products: int) -> list[Recorded]:
    """Scans of `orders` orders of `products` lines, decoded and interned as a rebuild
    reads them."""
    from projections.replaying import SHARED_FIELDS

    events = []
    for i in range(orders * products):
        scan = {
            "tenant": "demo",
            "order_id": f"o{i % orders}",
            "product_id": f"p{i // orders}",
            "unit": "H87",
            "picked": 1,
            "packed": 1,
            "canceled": 0,
            "event_time": f"2024-05-01T10:{i % 60:02d}:00.000Z",
        }
        data = orjson.loads(orjson.dumps(scan))
        for name in SHARED_FIELDS:
            data[name] = sys.intern(data[name])
        events.append(Recorded(i, restored(PackingEventRecorded, data)))
    return events


def _held_bytes(acc: Accumulator, curs: Any, orders: int, products: int) -> int:
    """Bytes of Python objects `acc` holds once it has folded, and the rebuild let go
    of, the scans of `orders` orders of `products` lines."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        events = _events(orders, products)
        acc.fold(curs, events)
        del events
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


def test_what_a_rebuild_holds_at_its_bounds_fits_its_memory_budget() -> None:
    # A rebuild process is about 75 MB before it holds a row (the interpreter and its
    # modules) and a decoded chunk of events about 20 MB more: of a 300 MB budget, the
    # rows it holds get at most 150 MB, with room for the allocator's own overhead.
    orders, products = 2_000, 5
    states, lines = OrderStatus().accumulator(), LineTotals().accumulator()
    state = _held_bytes(states, _NoRows(), orders, products) / orders
    line = _held_bytes(lines, None, orders, products) / (orders * products)
    assert states.held() == orders and lines.rows() == orders * products
    weight = OrderStatusAccumulator.STATE_WEIGHT
    # A state counts for `weight` line rows in the bound: no lighter than it is.
    assert state <= weight * line * 1.25, (state, line)
    kept_across_flushes = OrderStatusAccumulator.MAX_CACHED * state
    folded_before_a_flush = MAX_ROWS_DEFAULT * max(line, state / weight)
    assert kept_across_flushes + folded_before_a_flush <= 150 * 2**20, (
        kept_across_flushes,
        folded_before_a_flush,
    )
