"""A runner keeps its folded order states between steps only while the view is its own.

The kept states spare the next step a reload; they must never be written back over a
view that somebody else changed in between: another runner (another process) applying
events, or a rebuild swapping a new table in.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from devtools.harness import fold
from devtools.harness.support import packing_event, view_orders, view_totals
from ledger.adapters.event_store import EventStore
from ledger.domain.packing import Attribution, PackingEvent
from projections import runner
from projections.registry import PROJECTIONS
from projections.runner import Kept, step
from tests.helpers.replay import expected_orders

GROUP = list(PROJECTIONS.values())


def scan(i: int, order: str) -> PackingEvent:
    return packing_event(f"e{i}", order_id=order, product_id=f"p{i % 2}", packed=1 + i % 3)


def lines_of(url: str, order: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT lines FROM order_status WHERE order_id = %s", (order,)
        ).fetchone()
    return row[0] if row else None


def test_two_runners_taking_turns_keep_the_views_equal_to_the_fold(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    a = psycopg.connect(db_url, autocommit=True)
    b = psycopg.connect(db_url, autocommit=True)
    kept_a: dict[str, Kept] = {}
    kept_b: dict[str, Kept] = {}
    sent: list[PackingEvent] = []
    try:
        for turn in range(12):
            batch = [scan(turn * 5 + j, f"o{j % 3}") for j in range(5)]
            store.append_packing_events([(e, Attribution()) for e in batch])
            sent += batch
            conn, kept = (a, kept_a) if turn % 2 == 0 else (b, kept_b)
            while step(conn, GROUP, 100, kept):
                pass
        assert kept_a and kept_b  # both kept states, and took turns writing the views
    finally:
        a.close()
        b.close()
        store.close()
    assert view_totals(db_url, "demo") == fold.line_totals(sent)
    assert view_orders(db_url, "demo") == expected_orders("demo", [], sent)
    assert {o: lines_of(db_url, o) for o in ("o0", "o1", "o2")} == expected_lines(sent)


def expected_lines(events: list[PackingEvent]) -> dict[str, dict[str, dict[str, list[int]]]]:
    """Each order's [picked, packed, canceled] per product and unit, summed over its events."""
    lines: dict[str, dict[str, dict[str, list[int]]]] = {}
    for e in events:
        by_unit = lines.setdefault(e.order_id, {}).setdefault(e.product_id, {})
        line = by_unit.setdefault(e.unit, [0, 0, 0])
        line[0] += e.picked
        line[1] += e.packed
        line[2] += e.canceled
    return lines


def test_a_table_swapped_in_under_kept_states_is_read_again(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    conn = psycopg.connect(db_url, autocommit=True)
    kept: dict[str, Kept] = {}
    try:
        store.append_packing_events([(scan(0, "o1"), Attribution())])  # p0, packed 1
        while step(conn, GROUP, 100, kept):
            pass
        assert "order_status" in kept
        assert lines_of(db_url, "o1") == {"p0": {"H87": [0, 1, 0]}}
        # A rebuild's swap (as if the fold had changed): same position, another table.
        with psycopg.connect(db_url, autocommit=True) as admin, admin.transaction():
            admin.execute("CREATE TABLE order_status__new (LIKE order_status INCLUDING ALL)")
            admin.execute("INSERT INTO order_status__new SELECT * FROM order_status")
            admin.execute(
                'UPDATE order_status__new SET lines = \'{"p0": {"H87": [0, 5, 0]}}\' '
                "WHERE order_id = 'o1'"
            )
            admin.execute("ALTER TABLE order_status RENAME TO order_status__old")
            admin.execute("ALTER TABLE order_status__new RENAME TO order_status")
            admin.execute("DROP TABLE order_status__old")
        store.append_packing_events([(scan(6, "o1"), Attribution())])  # p0, packed 1
        while step(conn, GROUP, 100, kept):
            pass
    finally:
        conn.close()
        store.close()
    assert lines_of(db_url, "o1") == {
        "p0": {"H87": [0, 6, 0]}
    }  # the swapped-in row, then the event


def test_a_runner_keeps_no_more_states_than_its_bound(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "KEEP_AT_MOST", 2)
    store = EventStore.from_url(db_url, pool_size=1)
    conn = psycopg.connect(db_url, autocommit=True)
    kept: dict[str, Kept] = {}
    try:
        store.append_packing_events([(scan(i, f"o{i}"), Attribution()) for i in range(2)])
        step(conn, GROUP, 100, kept)
        assert "order_status" in kept  # two orders' states: kept
        store.append_packing_events([(scan(i, f"o{i}"), Attribution()) for i in range(2, 3)])
        step(conn, GROUP, 100, kept)
        assert "order_status" not in kept  # three: dropped
    finally:
        conn.close()
        store.close()


def test_a_failed_step_keeps_nothing(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    conn = psycopg.connect(db_url, autocommit=True)
    kept: dict[str, Kept] = {}
    try:
        store.append_packing_events([(scan(0, "o1"), Attribution())])
        step(conn, GROUP, 100, kept)
        assert kept
        store.append_packing_events([(scan(1, "o1"), Attribution())])
        conn.close()  # the step fails: whatever it folded did not commit
        with pytest.raises(psycopg.Error):
            step(conn, GROUP, 100, kept)
        assert kept == {}
    finally:
        store.close()
