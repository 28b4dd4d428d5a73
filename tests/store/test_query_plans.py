"""Appends and projection steps look rows up by key, however the store has grown.

While a table is a few pages the planner estimates one row for any index led by the
tenant, and a statement prepared then keeps its plan until the next ANALYZE: the
append's duplicate check and the order_status load were planned as sequential scans or
on the (tenant, ...) indexes with a filter on the id, and read every event or order of
the tenant per lookup, so appends slowed as the store grew. The keys now lead with the
id, the probes name only the id, no scan is planned in an append or a projection step,
and the tenant column says tenants are few (migrations/0006_key_lookups.sql).
"""

from __future__ import annotations

import orjson
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from bench.seed import seed
from devtools.harness.support import packing_event
from ledger.adapters.event_store import EventStore
from ledger.adapters.prepared import READ_FOR_DECISION, prepare_append
from ledger.domain.packing import Attribution, PackingEvent
from projections.order_status import OrderStatus, load_query
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import step
from tests.helpers.plans import plan


def scan(i: int) -> PackingEvent:
    return packing_event(f"e{i}", order_id=f"o{i % 50}", packed=1)


def test_the_duplicate_check_probes_the_primary_key_after_an_analyze_of_one_event(
    db_url: str,
) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        store.append_packing_events([(scan(0), Attribution())])
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ANALYZE packing_events")
        for start in range(1, 2001, 100):
            store.append_packing_events(
                [(scan(i), Attribution()) for i in range(start, start + 100)]
            )
    finally:
        store.close()
    keys = orjson.dumps({"e": [["demo", "e5"], ["demo", "new"]], "o": [], "s": []}).decode()
    with psycopg.connect(db_url, autocommit=True) as conn:
        prepare_append(conn)  # the statement the append runs, prepared as it prepares it
        explained = plan(
            conn, sql.SQL("EXECUTE {}({})").format(sql.Identifier(READ_FOR_DECISION), keys), ()
        )
    assert "packing_events_pkey" in explained, explained
    assert "packing_events_order_idx" not in explained, explained
    assert "packing_events_feed_idx" not in explained, explained


def test_an_order_state_is_loaded_by_its_primary_key_after_an_analyze_of_one_order(
    db_url: str,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO order_status (tenant, order_id, site_code) VALUES ('demo', 'o1', 'main')"
        )
        conn.execute("ANALYZE order_status")
        conn.execute(
            "INSERT INTO order_status (tenant, order_id, site_code) "
            "SELECT 'demo', 'o' || i, 'main' FROM generate_series(2, 3000) i"
        )
        explained = plan(conn, load_query(sql.Identifier("order_status")), (["demo"], ["o7"]))
    assert "order_status_pkey" in explained, explained
    assert "order_status_packlist_idx" not in explained, explained


def test_a_rebuilt_view_keeps_the_tenant_statistics_setting(db_url: str) -> None:
    seed(db_url, 200, tenant="demo", orders=20, products=2)
    rebuild(db_url, OrderStatus())
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT attoptions FROM pg_attribute "
            "WHERE attrelid = 'order_status'::regclass AND attname = 'tenant'"
        ).fetchone()
    assert row is not None and any(o.startswith("n_distinct=1") for o in row[0] or []), row


def scans(conn: psycopg.Connection) -> dict[str, int]:
    """Sequential scans of each table, and scans of each index that is no table's key.

    Flushes this connection's counts first; other connections' counts are in once they
    have flushed theirs (pg_stat_force_next_flush) or closed.
    """
    curs = conn.cursor(row_factory=tuple_row)
    curs.execute("SELECT pg_stat_force_next_flush()")
    curs.execute("SELECT pg_stat_clear_snapshot()")
    rows = curs.execute(
        "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname = ANY(%s) "
        "UNION ALL SELECT indexrelname, idx_scan FROM pg_stat_user_indexes "
        "WHERE indexrelname = ANY(%s)",
        (
            ["stored_events", "packing_events", "closed_orders", "line_totals", "order_status"],
            ["packing_events_feed_idx", "packing_events_order_idx", "order_status_packlist_idx"],
        ),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


@pytest.mark.parametrize(
    "statistics", ["never analyzed", "analyzed empty", "analyzed at one event"]
)
def test_appends_and_projection_steps_read_by_key_as_the_store_grows(
    db_url: str, statistics: str
) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    writer = psycopg.connect(db_url, autocommit=True, row_factory=dict_row)
    views = psycopg.connect(db_url, autocommit=True)
    try:
        if statistics == "analyzed empty":
            writer.execute("ANALYZE")  # say, by an operator's maintenance script
        store.append_packing_events([(scan(0), Attribution())], conn=writer)
        for projection in PROJECTIONS.values():
            step(views, projection, 100)
        if statistics == "analyzed at one event":
            # What autovacuum's first visit can leave: statistics of a store this small.
            writer.execute("VACUUM ANALYZE")
        scans(views)
        before = scans(writer)
        # More batches than psycopg's prepare threshold, on the same connections.
        for start in range(1, 3001, 100):
            batch = [(scan(i), Attribution()) for i in range(start, start + 100)]
            store.append_packing_events(batch, conn=writer)
            for projection in PROJECTIONS.values():
                step(views, projection, 100)
        scans(views)
        after = scans(writer)
    finally:
        writer.close()
        views.close()
        store.close()
    assert after == before
