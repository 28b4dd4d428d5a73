"""`pickpack projections rebuild --tenant T`: that tenant's rows rebuilt, every other left.

Expectations are the folds of the facts sent (devtools/harness/fold.py and the domain's
order rules), and, for the tenant not rebuilt, the rows exactly as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from cli.main import main
from devtools.harness import fold
from devtools.harness.support import packing_event, view_orders, view_totals
from ledger.adapters.event_store import EventStore
from ledger.domain.packing import Attribution, PackingEvent
from projections.rebuild_tenant import rebuild_tenant
from projections.registry import PROJECTIONS
from projections.runner import Kept, step
from tests.projections.test_projection_kept_states import expected_lines, lines_of
from tests.projections.test_projection_replay import expected_orders

GROUP = list(PROJECTIONS.values())


def scans(tenant: str, first: int, n: int) -> list[PackingEvent]:
    return [
        packing_event(
            f"{tenant}-{i}",
            tenant=tenant,
            order_id=f"o{i % 3}",
            product_id=f"p{i % 2}",
            picked=1 + i % 2,
            packed=i % 3,
        )
        for i in range(first, first + n)
    ]


def catch_up(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while step(conn, GROUP, 100):
            pass


def damage(url: str) -> None:
    """What a defect in a fold could have left: wrong sums and counts in both tenants."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE line_totals SET picked = picked + 100, events = events + 7")
        conn.execute("UPDATE order_status SET products_packed = products_packed + 50")


def rows(url: str, tenant: str) -> dict[str, Any]:
    return {"totals": view_totals(url, tenant), "orders": view_orders(url, tenant)}


def test_a_tenants_rebuild_rewrites_its_rows_and_leaves_the_others(
    db_url: str, tmp_path: Path
) -> None:
    store = EventStore.from_url(db_url, pool_size=1)
    sent = {"acme": scans("acme", 0, 40), "bolt": scans("bolt", 0, 30)}
    try:
        for tenant in ("acme", "bolt"):
            store.append_packing_events([(e, Attribution()) for e in sent[tenant]])
        catch_up(db_url)
        damage(db_url)
        bolt_damaged = rows(db_url, "bolt")
        assert view_totals(db_url, "acme") != fold.line_totals(sent["acme"])

        env = {**os.environ, "PICKPACK_DATABASE_URL": db_url, "PICKPACK_DATA_DIR": str(tmp_path)}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "projections",
                "rebuild",
                "--all",
                "--tenant",
                "acme",
                "--chunk",
                "7",
            ],
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

        assert view_totals(db_url, "acme") == fold.line_totals(sent["acme"])
        assert view_orders(db_url, "acme") == expected_orders("acme", [], sent["acme"])
        assert rows(db_url, "bolt") == bolt_damaged  # untouched

        # The runner goes on from its position: nothing counted twice, nothing missed.
        more = scans("acme", 40, 5)
        store.append_packing_events([(e, Attribution()) for e in more])
        catch_up(db_url)
        assert view_totals(db_url, "acme") == fold.line_totals(sent["acme"] + more)
        assert view_orders(db_url, "acme") == expected_orders("acme", [], sent["acme"] + more)
    finally:
        store.close()


def test_a_bad_tenant_name_is_refused_before_anything_runs(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path))
    assert main(["projections", "rebuild", "--all", "--tenant", "A!"]) == 2
    assert "--tenant 'A!'" in capsys.readouterr().err


def test_a_runners_kept_states_are_read_again_after_a_tenants_rebuild(db_url: str) -> None:
    """A live runner keeps the order states it folded; states it took from rows that a
    tenant's rebuild then rewrote must not be written back over the rebuilt rows."""
    store = EventStore.from_url(db_url, pool_size=1)
    conn = psycopg.connect(db_url, autocommit=True)
    kept: dict[str, Kept] = {}
    sent = scans("acme", 0, 6)
    try:
        store.append_packing_events([(e, Attribution()) for e in sent[:3]])
        catch_up(db_url)
        with psycopg.connect(db_url) as damaging:  # order o0's lines made wrong
            wrong = orjson.dumps({"p0": {"H87": [100, 100, 0]}}).decode()
            damaging.execute(
                "UPDATE order_status SET lines = %s::jsonb WHERE order_id = 'o0'", (wrong,)
            )
        store.append_packing_events([(e, Attribution()) for e in sent[3:5]])
        while step(conn, GROUP, 100, kept):  # loads the wrong row and keeps its state
            pass
        assert kept

        rebuild_tenant(db_url, GROUP, "acme")
        assert lines_of(db_url, "o0") == expected_lines(sent[:5])["o0"]

        store.append_packing_events([(sent[5], Attribution())])  # o2 ... and o0 again:
        store.append_packing_events(
            [
                (
                    packing_event(
                        "acme-x", tenant="acme", order_id="o0", product_id="p0", packed=1
                    ),
                    Attribution(),
                )
            ]
        )
        while step(conn, GROUP, 100, kept):
            pass
    finally:
        conn.close()
        store.close()
    final = [
        *sent,
        packing_event("acme-x", tenant="acme", order_id="o0", product_id="p0", packed=1),
    ]
    assert lines_of(db_url, "o0") == expected_lines(final)["o0"]
    assert view_orders(db_url, "acme") == expected_orders("acme", [], final)
