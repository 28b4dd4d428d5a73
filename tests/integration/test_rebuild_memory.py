"""A rebuild's memory stays bounded as the store's lines grow: it flushes past a row bound.

The accumulators hold one row per line (and per order) folded since their last flush;
a store with more lines than the bound is replayed in several flushes, and the views it
swaps in equal the live ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.adapters.event_store import EventStore
from ledger.domain.packing import Attribution
from projections.base import Accumulator, Projection, Recorded
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import step
from tests.support import packing_event, view_orders, view_totals

LINES = 300  # 150 orders x 2 products, 2 events each
EVENTS = 2 * LINES
CHUNK = 20
MAX_ROWS = 50


@dataclass
class Watched:
    """An accumulator reporting, after each fold, the rows every accumulator holds."""

    inner: Accumulator
    all: list[Watched]
    seen: list[int]

    def fold(self, curs: Any, events: list[Recorded]) -> None:
        self.inner.fold(curs, events)
        if self is self.all[-1]:  # the chunk is folded into every accumulator
            self.seen.append(sum(w.inner.rows() for w in self.all))

    def flush(self, curs: Any) -> None:
        self.inner.flush(curs)

    def held(self) -> int:
        return self.inner.held()

    def rows(self) -> int:
        return self.inner.rows()


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
    # plus one chunk's new rows in each accumulator (the bound is checked per chunk).
    assert max(seen) <= MAX_ROWS + CHUNK * len(accs)
    assert max(seen) > MAX_ROWS  # the store is larger than the bound
    assert view_totals(db_url) == live_totals
    assert view_orders(db_url) == live_orders
