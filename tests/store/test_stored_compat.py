"""Stored events written by an earlier version decode and rebuild to the same views.

tests/fixtures/store_v1.json was recorded by tests/fixtures/record_store.py with the
code as it was before the modules moved (event topics name `ledger.events:...`). The
rows are loaded into a fresh database as they were stored, the projections are rebuilt
by today's code, and every view (view rows, order bodies, packlists, the events feed)
must equal the fixture's `views`. Those are what the recording code showed, except where
the counting rules changed a figure on purpose: order_status `lines` are kept per unit,
a KGM scan on a piece entry (o2) no longer counts on it and is shown in
`unreconciledAmounts`, as is a product the order does not list (o4); and a packlist item
adds no unlike units (docs/explanation/semantics.md, "Progress is per line"): an order in
pieces and grams has no productsTotal/Packed/Canceled, and every item carries its totals
per unit and its lines done out of its lines (`as_the_progress_rule_shows`).
"""

from __future__ import annotations

import base64
from pathlib import Path
from uuid import UUID

import httpx
import orjson
import psycopg
import pytest
from eventsourcing.persistence import Mapper, StoredEvent

from devtools.harness.service import auth, start_service
from ledger.adapters.encoding import make_transcoder
from ledger.domain.events import LedgerEvent
from tests.fixtures.record_store import views
from tests.helpers.stored import fixture, load

pytestmark = pytest.mark.filterwarnings("ignore")


def test_every_stored_event_decodes_with_the_librarys_mapper() -> None:
    m: Mapper[UUID] = Mapper(transcoder=make_transcoder())
    kinds = set()
    for r in fixture()["stored_events"]:
        event = m.to_domain_event(
            StoredEvent(
                originator_id=UUID(r["originator_id"]),
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=base64.b64decode(r["state"]),
            )
        )
        assert event.originator_version == r["originator_version"]
        kinds.add(type(event).__name__)
    assert len(kinds) == 9  # every kind of fact the ledger records is in the fixture


def test_a_fact_built_as_a_decision_builds_it_is_stored_as_before() -> None:
    """Decisions construct each fact by keyword, without its envelope, and the store
    stamps it (LedgerEvent.recorded): for every kind of fact in the fixture, the stream
    and the stored state are byte for byte what the earlier code stored."""
    m: Mapper[UUID] = Mapper(transcoder=make_transcoder())
    envelope = {"originator_id", "originator_version", "timestamp"}
    for r in fixture()["stored_events"]:
        stored = StoredEvent(
            originator_id=UUID(r["originator_id"]),
            originator_version=r["originator_version"],
            topic=r["topic"],
            state=base64.b64decode(r["state"]),
        )
        before = m.to_domain_event(stored)
        assert isinstance(before, LedgerEvent)
        fact = type(before)(**{k: v for k, v in vars(before).items() if k not in envelope})
        again = m.to_stored_event(fact.recorded(stored.originator_version, before.timestamp))
        assert again == stored, r["topic"]


def test_a_store_recorded_before_the_move_rebuilds_to_the_same_views(
    db_url: str, tmp_path: Path
) -> None:
    from projections.rebuild import rebuild
    from projections.registry import PROJECTIONS

    data = fixture()
    load(db_url, data)
    rebuild(db_url, list(PROJECTIONS.values()))
    server, thread, runtime, base = start_service(db_url, tmp_path, run_workers=False)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            now = views(db_url, client, auth)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
    expected = data["views"]
    assert now["line_totals"] == expected["line_totals"]
    assert now["order_status"] == expected["order_status"]
    for key, body in expected["bodies"].items():
        if key.endswith("/packlist"):
            body = [body[0], [as_the_progress_rule_shows(item) for item in body[1]]]
        assert now["bodies"][key] == body, key


PIECE_CODES = {"H87", "C62", "PCE", "EA"}  # UN/ECE Rec. 20 codes of one piece each


def as_the_progress_rule_shows(item: dict) -> dict:
    """A recorded packlist item as the progress rule shows it now, worked out from the
    item's own entries: totals per orderUnit in the order the units first appear, an entry
    done when packed + cancelled reach its totalCount (a weighed entry: anything packed),
    and the order-wide sums only where every entry counts in one kind of unit."""
    item = dict(item)
    entries = item["entries"]
    per_unit: dict[str, dict] = {}
    for e in entries:
        t = per_unit.setdefault(
            e["orderUnit"],
            {"unit": e["orderUnit"], "totalCount": 0, "packedCount": 0, "canceledCount": 0},
        )
        for field in ("totalCount", "packedCount", "canceledCount"):
            t[field] += e[field]
    kinds = {"piece" if e["orderUnit"] in PIECE_CODES else e["orderUnit"] for e in entries}
    if len(kinds) > 1:
        for field in ("productsTotal", "productsPacked", "productsCanceled"):
            item.pop(field, None)
    item["unitTotals"] = list(per_unit.values())
    item["linesTotal"] = len(entries)
    item["linesComplete"] = sum(
        (e["packedCount"] > 0)
        if e.get("weightDependent")
        else (e["packedCount"] + e["canceledCount"] >= e["totalCount"])
        for e in entries
    )
    return item


def test_events_are_stored_under_the_topics_the_store_already_holds() -> None:
    from eventsourcing.utils import get_topic

    from ledger.domain.events import LedgerEvent

    stored = {r["topic"] for r in fixture()["stored_events"]}
    classes = LedgerEvent.__subclasses__()
    # Kinds of fact added after the fixture was written cannot be in it; they are
    # stored under the same module name as the others.
    added_since = {"CorrectionRecorded"}
    assert {get_topic(cls) for cls in classes if cls.__name__ not in added_since} == stored
    for cls in classes:
        assert get_topic(cls) == f"ledger.events:{cls.__qualname__}"


def test_the_migration_gives_each_tenant_of_an_existing_store_its_mark(db_url: str) -> None:
    """A store recorded before tenant_heads existed: migration 0010 fills each tenant's
    mark from what it holds, order facts (tenant read from their stored state) included."""
    from ledger.adapters.migrate import migrate

    data = fixture()
    with psycopg.connect(db_url, autocommit=True) as conn:  # as before migration 0010
        conn.execute("DROP TABLE tenant_heads")
        conn.execute("DELETE FROM schema_migrations WHERE version = 10")
    load(db_url, data)
    expected: dict[str, int] = {}
    for r in data["stored_events"]:
        tenant = orjson.loads(base64.b64decode(r["state"]))["tenant"]
        expected[tenant] = max(expected.get(tenant, 0), r["notification_id"])
    last = max(r["notification_id"] for r in data["stored_events"])
    assert len(expected) == 2 and last in expected.values()
    # The newest fact of some tenant is an order fact: packing_events alone would miss it.
    packing = {(r["tenant"], r["position"]) for r in data["index_tables"]["packing_events"]}
    assert any((t, p) not in packing for t, p in expected.items())

    assert migrate(db_url) == ["0010_tenant_heads.sql"]
    with psycopg.connect(db_url) as conn:
        marks = dict(conn.execute("SELECT tenant, position FROM tenant_heads").fetchall())
    assert marks == expected
