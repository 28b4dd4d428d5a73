"""Each tenant's high-water mark (tenant_heads) is raised by every writer, in the
transaction that records the tenant's events, and never lowered."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from devtools.harness.support import packing_event
from ledger.adapters.event_store import EventStore
from ledger.domain import orders
from ledger.domain.packing import Attribution, Verdict

WHO = Attribution("user-1", "saas-1")
DOCUMENT = {"id": "o1", "siteCode": "main", "entries": []}


@pytest.fixture
def store(db_url: str) -> Iterator[EventStore]:
    s = EventStore.from_url(db_url)
    yield s
    s.close()


def marks(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        return dict(conn.execute("SELECT tenant, position FROM tenant_heads").fetchall())


def test_a_batch_raises_each_of_its_tenants_to_its_newest_position(
    store: EventStore, db_url: str
) -> None:
    assert marks(db_url) == {}
    batch = [
        (packing_event("a1", tenant="acme", packed=1), WHO),
        (packing_event("b1", tenant="beta", packed=1), WHO),
        (packing_event("a2", tenant="acme", packed=1), WHO),
    ]
    out = store.append_packing_events(batch)
    assert marks(db_url) == {"acme": out[2].position, "beta": out[1].position}

    # A batch of duplicates records nothing and moves no mark.
    again = store.append_packing_events(batch[:1])
    assert again[0].verdict is Verdict.DUPLICATE
    assert marks(db_url) == {"acme": out[2].position, "beta": out[1].position}

    # beta's next write moves beta's mark only.
    [b2] = store.append_packing_events([(packing_event("b2", tenant="beta"), WHO)])
    assert marks(db_url) == {"acme": out[2].position, "beta": b2.position}


def test_order_commands_raise_their_tenants_mark(store: EventStore, db_url: str) -> None:
    [scan] = store.append_packing_events([(packing_event("a1", tenant="acme"), WHO)])
    beta = store.run_order_command("beta", "o1", lambda c: orders.register(c.state, DOCUMENT))
    assert marks(db_url) == {"acme": scan.position, "beta": max(beta)}
    ids = store.run_order_command("acme", "o1", lambda c: orders.register(c.state, DOCUMENT))
    ids += store.run_order_command(
        "acme", "o1", lambda c: orders.change_status(c.state, "CANCELLED", "user-1")
    )
    assert marks(db_url) == {"acme": max(ids), "beta": max(beta)}
    # A command that records nothing (the same document again) moves nothing.
    assert store.run_order_command("beta", "o1", lambda c: orders.register(c.state, DOCUMENT)) == []
    assert marks(db_url) == {"acme": max(ids), "beta": max(beta)}


def test_the_mark_is_never_lowered(store: EventStore, db_url: str) -> None:
    """greatest(): a mark ahead of a write (restored from a later backup, say) stays."""
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO tenant_heads VALUES ('acme', 1000000)")
    store.append_packing_events([(packing_event("a1", tenant="acme"), WHO)])
    store.run_order_command("acme", "o1", lambda c: orders.register(c.state, DOCUMENT))
    assert marks(db_url) == {"acme": 1000000}
