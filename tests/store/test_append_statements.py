"""The append's statements travel as SQL text: any scan comes back exactly as it was sent.

An append sends its batch as JSON literals to statements prepared by name in the
writer's session (ledger/adapters/prepared.py, `prepare_append`). Whatever a scan holds (quotes,
backslashes, non-ASCII text) is stored byte for byte as the library's mapper would
store it, and a session that lost the statements prepares them again.
"""

from __future__ import annotations

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg.rows import dict_row

from devtools.harness.support import packing_event
from ledger.adapters.encoding import make_mapper
from ledger.adapters.event_store import EventStore
from ledger.adapters.prepared import INSERT_PACKING_EVENTS
from ledger.domain.events import PackingEventRecorded
from ledger.domain.packing import Attribution, PackingEvent, Verdict

AWKWARD = [
    "it's",
    'say "hi"',
    "back\\slash",
    "E'\\x41'",
    "$1; COMMIT; --",
    "Größe",
    "箱 📦",
    "tab\tnewline\n",
]

FIELDS = ("tenant", "event_id", "order_id", "product_id", "site", "supplier_id", "event_time")


def scan(i: int, text: str) -> PackingEvent:
    return packing_event(
        f"e{i}-{text}",
        tenant=f"t-{text}",
        order_id=f"o-{text}",
        product_id=f"p-{text}",
        site=text,
        supplier_id=text,
        packed=1,
    )


def test_scans_with_quotes_backslashes_and_any_script_are_stored_exactly(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    who = Attribution("user 'ü'", "saas\\token")
    batch = [(scan(i, text), who) for i, text in enumerate(AWKWARD)]
    try:
        outcomes = store.append_packing_events(batch)
        again = store.append_packing_events(batch)  # the retries find them recorded
    finally:
        store.close()
    assert [o.verdict for o in outcomes] == [Verdict.RECORD] * len(AWKWARD)
    assert [o.verdict for o in again] == [Verdict.DUPLICATE] * len(AWKWARD)
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT p.tenant, p.event_id, p.order_id, p.product_id, s.originator_id, "
            "s.originator_version, s.topic, s.state FROM packing_events p "
            "JOIN stored_events s ON s.notification_id = p.position ORDER BY p.position"
        ).fetchall()
    assert [(r["tenant"], r["event_id"], r["order_id"], r["product_id"]) for r in rows] == [
        (e.tenant, e.event_id, e.order_id, e.product_id) for e, _ in batch
    ]
    mapper = make_mapper()
    for (event, attribution), row in zip(batch, rows, strict=True):
        recorded = mapper.to_domain_event(
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
        )
        assert isinstance(recorded, PackingEventRecorded)
        assert [getattr(recorded, f) for f in FIELDS] == [getattr(event, f) for f in FIELDS]
        assert (recorded.user, recorded.saas_token) == (attribution.user, attribution.saas_token)


def test_a_session_that_lost_the_prepared_statements_prepares_them_again(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as writer:
            first = store.append_packing_events([(scan(1, "a"), Attribution())], writer)
            writer.execute(f"DEALLOCATE {INSERT_PACKING_EVENTS}")  # one of the two, say
            second = store.append_packing_events([(scan(2, "a"), Attribution())], writer)
            writer.execute("DISCARD ALL")  # both, as a pooler's reset would
            third = store.append_packing_events([(scan(3, "a"), Attribution())], writer)
    finally:
        store.close()
    assert [o.verdict for o in first + second + third] == [Verdict.RECORD] * 3
    assert [o.position for o in first + second + third] == [1, 2, 3]
