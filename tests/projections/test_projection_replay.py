"""Replay: for random event sequences, the views equal a plain fold, live and rebuilt."""

from __future__ import annotations

import dataclasses
import itertools

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.harness import fold
from devtools.harness.support import packing_event, view_orders, view_totals
from ledger.adapters.event_store import EventStore
from ledger.domain import orders
from ledger.domain.packing import Attribution, PackingEvent
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import step
from tests.helpers.replay import ENTRIES, expected_orders

_tenants = itertools.count()

packing_events = st.builds(
    lambda eid, order, product, picked, packed, canceled, sec: packing_event(
        f"e{eid}",
        tenant="",
        order_id=f"o{order}",
        product_id=f"p{product}",
        event_time=f"2024-05-01T10:00:{sec:02d}.000Z",
        picked=picked,
        packed=packed,
        canceled=canceled,
    ),
    st.integers(0, 30),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 2),
    st.integers(0, 59),
)


def with_tenant(e: PackingEvent, tenant: str) -> PackingEvent:
    return dataclasses.replace(e, tenant=tenant)


def catch_up(url: str, batch: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for projection in PROJECTIONS.values():
            while step(conn, projection, batch):
                pass


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    sequence=st.lists(packing_events, min_size=1, max_size=40),
    retries=st.lists(st.integers(0, 39), max_size=10),
    split=st.integers(1, 12),
    runner_batch=st.integers(1, 25),
    register=st.lists(st.sampled_from(["o0", "o1", "o2"]), unique=True, max_size=3),
)
def test_views_equal_the_fold_live_and_after_rebuild(
    db_url: str,
    sequence: list[PackingEvent],
    retries: list[int],
    split: int,
    runner_batch: int,
    register: list[str],
) -> None:
    tenant = f"t{next(_tenants)}"
    events = [with_tenant(e, tenant) for e in sequence]
    # Scanner retries: some events are sent again, later, unchanged.
    events += [events[i] for i in retries if i < len(events)]
    store = EventStore.from_url(db_url, pool_size=1, max_overflow=1)
    try:
        for o in register:  # registered before any event, so recording order is simple
            store.run_order_command(
                tenant, o, lambda c, o=o: orders.register(c.state, {"id": o, "entries": ENTRIES})
            )
        for i in range(0, len(events), split):
            store.append_packing_events([(e, Attribution("u")) for e in events[i : i + split]])
    finally:
        store.close()

    recorded = fold.accepted(events)
    catch_up(db_url, runner_batch)
    assert view_totals(db_url, tenant) == fold.line_totals(recorded)
    assert view_orders(db_url, tenant) == expected_orders(tenant, register, recorded)

    # And after a blue/green rebuild, from the whole store (every example's tenant).
    before_totals, before_orders = view_totals(db_url), view_orders(db_url)
    for projection in PROJECTIONS.values():
        rebuild(db_url, projection, chunk=runner_batch * 3, flush_every=runner_batch * 7)
    assert view_totals(db_url) == before_totals
    assert view_orders(db_url) == before_orders
