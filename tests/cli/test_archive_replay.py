"""Replaying archives: a store archived with `pickpack archive`, its archive files and the
export of what it retained loaded into an empty store with `pickpack events import`, and
the views rebuilt there, give the same views and the same change feed (every fact with
its recording instant and user) as the store had before the archive
(docs/how-to/retention.md, "Replay an archived year"; docs/explanation/semantics.md,
"Retention")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from cli.main import main
from devtools.harness.pg import DatabaseFactory
from devtools.harness.service import Service, auth
from devtools.harness.support import packing_event, scan_body, view_orders, view_totals, wait_until
from ledger.adapters import archive_store, partitions
from ledger.adapters.event_store import EventStore
from ledger.services.archive import archive
from ledger.services.changes import read
from projections.baseline import fold
from tests.helpers.export import export_retained

TENANTS = ("demo", "other")


def _feed(url: str, tenant: str) -> list[dict[str, Any]]:
    """The tenant's whole change feed, without positions (a replay draws new ones)."""
    store = EventStore.from_url(url, pool_size=1)
    try:
        items, after = [], 0
        while page := read(store.connection, tenant, after, 1000)["items"]:
            items += page
            after = page[-1]["position"]
    finally:
        store.close()
    return [{k: v for k, v in item.items() if k != "position"} for item in items]


def _caught_up(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return archive_store.projected_up_to(conn) >= partitions.drawn(conn)


def test_an_archived_store_replays_into_an_empty_one_with_the_same_views_and_feed(
    service: Service,
    db_url: str,
    databases: DatabaseFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    partitions.resize(db_url, 10)
    order = {
        "id": "r1",
        "siteCode": "main",
        "entries": [{"entryId": "e0", "productId": "p0", "totalCount": 40, "orderUnit": "H87"}],
    }
    put = service.client.put("/pick-pack/demo/orders/r1", json=order, headers=auth())
    assert put.status_code in (200, 201), put.text
    for i in range(28):
        if i % 5 == 0:
            partitions.ensure_ahead(db_url)
        tenant = TENANTS[i % 4 == 0]
        scan = packing_event(
            f"s{i}",
            tenant=tenant,
            order_id="r1" if i % 2 else f"o{i % 3}",
            product_id="p0",
            event_time=f"2024-05-01T10:00:{i:02d}.000Z",
            picked=1,
            packed=i % 2,
        )
        assert service.post_event(scan_body(scan), tenant=tenant).status_code == 200
    wait_until(lambda: _caught_up(db_url))
    before = {t: _feed(db_url, t) for t in TENANTS}
    totals, orders = view_totals(db_url), view_orders(db_url)

    done = archive(db_url, tmp_path / "archive", up_to=20, baseline=fold, settle=0)
    assert len(done) == 2
    retained = {
        t: export_retained(db_url, t, 20, tmp_path / f"retained-{t}.jsonl") for t in TENANTS
    }

    staging = databases.migrated()
    try:
        monkeypatch.setenv("PICKPACK_DATABASE_URL", staging)
        monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "data"))
        for tenant in TENANTS:
            for a in done:  # oldest first, then what the store retained
                assert (
                    main(
                        [
                            "events",
                            "import",
                            str(a.directory / f"{tenant}.jsonl.zst"),
                            "--tenant",
                            tenant,
                        ]
                    )
                    == 0
                )
            assert main(["events", "import", str(retained[tenant]), "--tenant", tenant]) == 0
        assert main(["projections", "rebuild", "--all"]) == 0
        assert {t: _feed(staging, t) for t in TENANTS} == before
        assert view_totals(staging) == totals
        assert view_orders(staging) == orders
    finally:
        databases.drop(staging)
