"""A store of plain JSON states goes on working when compressed ones are appended.

The store of tests/fixtures/store_v1.json (plain states, written before compression)
is loaded, the service appends scans to it (compressed, the default), and every reader
must see old and new alike: the live views, a rebuild, the events feed. (The story's
reads of compressed states are every change-feed and history test: the service stores
compressed by default.) The expected totals are the fixture's recorded views plus the
scans' amounts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from devtools.harness.faults import wait_caught_up
from devtools.harness.service import auth, start_service
from devtools.harness.support import view_totals
from ledger.adapters.compression import MARK_V1, state_json
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from tests.helpers.stored import fixture, load

pytestmark = pytest.mark.filterwarnings("ignore")

# Scans for a line the fixture holds (o1/p1, unit H87): amounts picked, packed, canceled.
SCANS = [("c1", 2, 1, 0), ("c2", 0, 1, 0), ("c3", 0, 0, 1)]


def _body(event_id: str, picked: int, packed: int, canceled: int) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "orderNumber": "o1",
        "productId": "p1",
        "pickedAmount": picked,
        "packedAmount": packed,
        "canceledAmount": canceled,
        "unit": "H87",
        "timestamp": "2030-01-10T09:00:00.000Z",
        "site": "main",
    }


def _stored(url: str) -> list[tuple[int, bytes]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT notification_id, state FROM stored_events ORDER BY notification_id"
        ).fetchall()
    return [(int(r[0]), bytes(r[1])) for r in rows]


def _post_scans(db_url: str, tmp_path: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    server, thread, runtime, base = start_service(db_url, tmp_path, env=env)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for scan in SCANS:
                r = client.post("/pick-pack/demo/events", json=_body(*scan), headers=auth())
                assert r.status_code == 200, r.text
            wait_caught_up(db_url)
            feed = client.get("/pick-pack/demo/events", headers=auth())
            assert feed.status_code == 200, feed.text
            return feed.json()  # type: ignore[no-any-return]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()


def test_scans_appended_compressed_to_a_plain_store_read_with_the_old_ones(
    db_url: str, tmp_path: Path
) -> None:
    data = fixture()
    load(db_url, data)
    rebuild(db_url, list(PROJECTIONS.values()))
    before = view_totals(db_url, "demo")
    old_feed = [e for e in data["views"]["bodies"]["demo/events"][1]]

    feed = _post_scans(db_url, tmp_path, {})

    stored = _stored(db_url)
    old = len(data["stored_events"])
    assert all(s[:1] == b"{" for _, s in stored[:old])
    assert len(stored) == old + len(SCANS)
    assert all(s[:1] == MARK_V1 and len(s) < len(state_json(s)) for _, s in stored[old:])

    p, k, c, n = before[("demo", "o1", "p1")]
    expected = dict(before)
    expected[("demo", "o1", "p1")] = (
        p + sum(s[1] for s in SCANS),
        k + sum(s[2] for s in SCANS),
        c + sum(s[3] for s in SCANS),
        n + len(SCANS),
    )
    assert view_totals(db_url, "demo") == expected  # the live views
    rebuild(db_url, list(PROJECTIONS.values()))
    assert view_totals(db_url, "demo") == expected  # and a rebuild of both kinds

    # The feed: the fixture's events as they were, then the new ones (later timestamps).
    assert feed[: len(old_feed)] == old_feed
    assert [(e["eventId"], e["pickedAmount"], e["packedAmount"], e["canceledAmount"])
            for e in feed[len(old_feed):]] == SCANS  # fmt: skip


def test_with_compression_off_new_states_are_plain_json_sql_can_read(
    db_url: str, tmp_path: Path
) -> None:
    _post_scans(db_url, tmp_path, {"PICKPACK_COMPRESS_EVENTS": "false"})
    with psycopg.connect(db_url) as conn:
        ids = conn.execute(
            "SELECT convert_from(state, 'UTF8')::json ->> 'event_id' FROM stored_events "
            "WHERE topic LIKE '%PackingEventRecorded' ORDER BY notification_id"
        ).fetchall()
    assert [r[0] for r in ids] == [s[0] for s in SCANS]


def test_how_far_behind_a_view_is_reads_compressed_and_plain_states(db_url: str) -> None:
    from devtools.harness.support import packing_event
    from ledger.adapters.event_store import EventStore
    from ledger.domain.packing import Attribution
    from projections.read import seconds_behind

    for n, compress in enumerate((True, False)):
        store = EventStore.from_url(db_url, compress=compress, pool_size=1, max_overflow=1)
        try:
            store.append_packing_events([(packing_event(f"b{n}"), Attribution("u"))])
        finally:
            store.close()
    assert [s[:1] for _, s in _stored(db_url)] == [MARK_V1, b"{"]
    time.sleep(0.5)
    with psycopg.connect(db_url) as conn:
        after_none, after_first = seconds_behind(conn, 0), seconds_behind(conn, 1)
        assert seconds_behind(conn, 2) is None
    # Each is the age of the event after the position: recorded at least 0.5 s ago.
    assert after_none is not None and 0.5 <= after_none < 30
    assert after_first is not None and 0.5 <= after_first <= after_none
