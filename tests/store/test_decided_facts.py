"""The store records the facts a decision constructs: each in its stream, stamped.

Decisions build event classes without an envelope (ledger/domain/events.py); the store
gives each its stream (an order fact the order's, a correction its line's), the next
version there and the time, and refuses a fact for an order other than the command's.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest

from ledger.adapters.event_store import EventStore
from ledger.domain import events as ev
from ledger.domain import orders
from ledger.domain.events import UNRECORDED_AT, line_stream_id, order_stream_id

DOCUMENT = {"id": "o1", "siteCode": "main", "entries": []}


@pytest.fixture
def store(db_url: str) -> Iterator[EventStore]:
    s = EventStore.from_url(db_url)
    yield s
    s.close()


def recorded(db_url: str, store: EventStore) -> list[ev.LedgerEvent]:
    """Every stored event, read back by the library's mapper, in position order."""
    from eventsourcing.persistence import StoredEvent

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "ORDER BY notification_id"
        ).fetchall()
    out = []
    for stream, version, topic, state in rows:
        event = store.mapper.to_domain_event(StoredEvent(UUID(str(stream)), version, topic, state))
        assert isinstance(event, ev.LedgerEvent)
        out.append(event)
    return out


def test_each_decided_fact_gets_its_stream_version_and_time(store: EventStore, db_url: str) -> None:
    correction = ev.CorrectionRecorded(
        tenant="acme",
        order_id="o1",
        correction_id="c1",
        product_id="p1",
        picked=1,
        packed=0,
        canceled=0,
        unit="H87",
        reason="missed",
        user="u1",
        saas_token=None,
    )
    store.run_order_command("acme", "o1", lambda c: orders.register(c.state, DOCUMENT))
    store.run_order_command("acme", "o1", lambda c: [correction])
    store.run_order_command("acme", "o1", lambda c: orders.change_status(c.state, "PACKED", "u"))
    facts = recorded(db_url, store)
    assert [type(f) for f in facts] == [
        ev.OrderRegistered,
        ev.CorrectionRecorded,
        ev.PackingStatusChanged,
    ]
    order, line = order_stream_id("acme", "o1"), line_stream_id("acme", "o1", "p1")
    assert [(f.originator_id, f.originator_version) for f in facts] == [
        (order, 1),
        (line, 1),
        (order, 2),
    ]
    assert all(f.timestamp > UNRECORDED_AT for f in facts)
    assert facts[1] == correction.recorded(1, facts[1].timestamp)


def test_a_decision_may_not_record_a_fact_of_another_order(store: EventStore, db_url: str) -> None:
    other = ev.OrderCancelled(tenant="acme", order_id="o2", user=None)
    with pytest.raises(ValueError, match="another's facts"):
        store.run_order_command("acme", "o1", lambda c: [other])
    assert recorded(db_url, store) == []
