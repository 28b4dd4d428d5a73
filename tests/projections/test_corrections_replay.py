"""Corrections mixed with scans: the views equal the reference model, live and rebuilt."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.harness import fold
from devtools.harness.support import packing_event, view_orders, view_totals
from ledger.adapters.event_store import EventStore
from ledger.domain import orders
from ledger.domain.corrections import Correction
from ledger.domain.errors import CorrectionRefused
from ledger.domain.events import (
    CorrectionRecorded,
    OrderRegistered,
    PackingEventRecorded,
    restored,
)
from ledger.domain.packing import Attribution, PackingEvent
from ledger.domain.status import OrderState, apply
from ledger.services import story
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import step

_tenants = itertools.count()
ENTRIES = [{"entryId": f"x{i}", "productId": f"p{i}", "totalCount": 3} for i in range(2)]


def catch_up(url: str, batch: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for projection in PROJECTIONS.values():
            while step(conn, projection, batch):
                pass


scans = st.builds(
    lambda eid, order, product, picked, packed, canceled: (
        "scan",
        eid,
        order,
        product,
        picked,
        packed,
        canceled,
    ),
    st.integers(0, 20),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 2),
    st.integers(0, 3),
    st.integers(0, 2),
)
fixes = st.builds(
    lambda cid, order, product, picked, packed, canceled: (
        "fix",
        cid,
        order,
        product,
        picked,
        packed,
        canceled,
    ),
    st.integers(0, 10),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(-2, 1),
    st.integers(-3, 1),
    st.integers(-2, 1),
).filter(lambda f: any(f[4:]))


def expected_orders(
    tenant: str, facts: list[PackingEvent | fold.Corrected]
) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The order states by the domain's fold, over the registration then the facts."""
    states = {o: OrderState(tenant, o) for o in ("o0", "o1")}
    for o, s in states.items():
        document = {"id": o, "entries": ENTRIES}
        apply(s, OrderRegistered(tenant=tenant, order_id=o, document=document))
    for f in facts:
        cls = CorrectionRecorded if isinstance(f, fold.Corrected) else PackingEventRecorded
        data = {"tenant": tenant, "order_id": f.order_id, "product_id": f.product_id}
        amounts = {"unit": f.unit, "picked": f.picked, "packed": f.packed, "canceled": f.canceled}
        apply(states[f.order_id], restored(cls, {**data, **amounts}))
    return {(tenant, o): (s.status, *s.counts()) for o, s in states.items()}


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(sequence=st.lists(st.one_of(scans, fixes), min_size=1, max_size=30))
def test_views_with_corrections_equal_the_reference_model(
    db_url: str, sequence: list[tuple[Any, ...]]
) -> None:
    tenant = f"t{next(_tenants)}"
    facts: list[PackingEvent | fold.Corrected] = []
    for kind, ref, order, product, picked, packed, canceled in sequence:
        common = {"tenant": tenant, "order_id": f"o{order}", "product_id": f"p{product}"}
        amounts = {"picked": picked, "packed": packed, "canceled": canceled}
        if kind == "scan":
            facts.append(packing_event(f"e{ref}", **common, **amounts))
        else:
            facts.append(fold.Corrected(**common, correction_id=f"c{ref}", **amounts))
    store = EventStore.from_url(db_url, pool_size=1, max_overflow=1)
    try:
        for o in ("o0", "o1"):
            store.run_order_command(
                tenant, o, lambda c, o=o: orders.register(c.state, {"id": o, "entries": ENTRIES})
            )
        for f in facts:
            if isinstance(f, PackingEvent):
                store.append_packing_events([(f, Attribution("u"))])
                continue
            correction = Correction(
                f.correction_id, f.product_id, f.picked, f.packed, f.canceled, f.unit, "r"
            )
            # Refused when below zero, or when the id was used with other content.
            with contextlib.suppress(CorrectionRefused):
                story.correct(store, tenant, f.order_id, correction, "u", None)
    finally:
        store.close()

    recorded = fold.accepted_story(facts)
    catch_up(db_url, 7)
    assert view_totals(db_url, tenant) == fold.story_line_totals(recorded)
    assert view_orders(db_url, tenant) == expected_orders(tenant, recorded)

    before_totals, before_orders = view_totals(db_url), view_orders(db_url)
    for projection in PROJECTIONS.values():
        rebuild(db_url, projection, chunk=5, flush_every=11)
    assert view_totals(db_url) == before_totals
    assert view_orders(db_url) == before_orders
