"""Rebuilds after an archive start from the views' baseline and give the live views.

The rules (docs/explanation/semantics.md, "Retention"; docs/explanation/retention.md,
section 6): archiving keeps the views' totals, and a rebuild must give the views the
live projections keep, row for row, whether facts are archived or not. The store is the
mixed one of the sliced rebuild's tests (several tenants; orders registered, one
registered again; scans in pieces and in weighed units; corrections up and down; status
changes, assignees, packaging, finishes with holding areas, cancellations with scans
after them; scans of orders never registered), every order's facts spread over the
whole store, so every order is open across each cut-off. Its positions fall in
partitions of 300; archives take the first ones. The expectation is the live runner's
fold, taken before anything is archived, and the same store replayed into a staging
database from its archive files and the export of what it retained.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cli.main import main
from devtools.harness.pg import DatabaseFactory
from devtools.harness.support import packing_event
from ledger.adapters import archive_store, partitions
from ledger.adapters.event_store import EventStore
from ledger.adapters.move import move
from ledger.domain.packing import Attribution
from ledger.services import order_commands
from ledger.services.archive import archive
from projections import baseline
from projections.base import Projection
from projections.rebuild import RebuildOutrun, rebuild
from tests.helpers.export import export_retained
from tests.projections.test_rebuild_slices import (
    BOUND,
    GROUP,
    TENANTS,
    FailingProjection,
    catch_up,
    document,
    record_mixed_store,
    scan,
    tables,
)

SIZE = 300

Views = dict[str, list[tuple[Any, ...]]]


@pytest.fixture
def store(db_url: str) -> Iterator[tuple[str, Views]]:
    """The mixed store over partitions of SIZE positions, the live views caught up."""
    partitions.resize(db_url, SIZE)
    partitions.ensure_ahead(db_url, ahead=12)
    record_mixed_store(db_url)
    catch_up(db_url)
    with psycopg.connect(db_url) as conn:
        head = partitions.drawn(conn)
    assert head > 4 * SIZE, head  # five partitions or more
    yield db_url, tables(db_url)


def _cli(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> int:
    monkeypatch.setenv("PICKPACK_DATABASE_URL", url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "data"))
    return main(list(args))


def _baselines(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return baseline.positions(conn, GROUP)


def test_rebuilds_after_two_archives_give_the_live_views_and_the_staging_replays(
    store: tuple[str, Views],
    databases: DatabaseFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, live = store
    first = archive(url, tmp_path / "archive", up_to=2 * SIZE, baseline=baseline.fold, settle=0)
    assert [a.partition for a in first] == ["stored_events_p1", "stored_events_p2"]
    assert _baselines(url) == {p.name: 2 * SIZE for p in GROUP}
    assert tables(url) == live  # the archive keeps the views

    assert _cli(url, monkeypatch, tmp_path, "projections", "rebuild", "--all") == 0
    said = " ".join(capsys.readouterr().out.split())  # as the terminal wrapped it
    assert f"from the baseline at position {2 * SIZE}" in said
    assert tables(url) == live
    for tenant in TENANTS:
        assert (
            _cli(url, monkeypatch, tmp_path, "projections", "rebuild", "--all", "--tenant", tenant)
            == 0
        )
        assert tables(url) == live, tenant
    # One projection alone, from its own baseline.
    assert _cli(url, monkeypatch, tmp_path, "projections", "rebuild", "order_status") == 0
    assert tables(url) == live

    # A second archive builds on the first one's baseline.
    second = archive(url, tmp_path / "archive", up_to=4 * SIZE, baseline=baseline.fold, settle=0)
    assert [a.partition for a in second] == ["stored_events_p3", "stored_events_p4"]
    assert _baselines(url) == {p.name: 4 * SIZE for p in GROUP}
    assert _cli(url, monkeypatch, tmp_path, "projections", "rebuild", "--all") == 0
    assert tables(url) == live
    assert (
        _cli(url, monkeypatch, tmp_path, "projections", "rebuild", "--all", "--tenant", "bolt") == 0
    )
    assert tables(url) == live

    # The live runner goes on from the rebuilt views.
    late = packing_event(
        "late", tenant="acme", order_id="acme-0", product_id="p0", packed=1,
        event_time="2024-05-02T08:00:00.000Z",
    )  # fmt: skip
    es = EventStore.from_url(url, pool_size=1)
    try:
        es.append_packing_events([(late, Attribution("u"))])
    finally:
        es.close()
    catch_up(url)
    now = tables(url)
    assert now != live
    assert _cli(url, monkeypatch, tmp_path, "projections", "rebuild", "--all") == 0
    assert tables(url) == now

    # The same facts replayed into a staging store: the archives, oldest first, then what
    # the store retains.
    staging = databases.migrated()
    try:
        for tenant in TENANTS:
            retained = export_retained(url, tenant, 4 * SIZE, tmp_path / f"retained-{tenant}.jsonl")
            files = [a.directory / f"{tenant}.jsonl.zst" for a in [*first, *second]]
            for path in [*files, retained]:
                assert (
                    _cli(
                        staging,
                        monkeypatch,
                        tmp_path,
                        "events",
                        "import",
                        str(path),
                        "--tenant",
                        tenant,
                    )
                    == 0
                )
        assert _cli(staging, monkeypatch, tmp_path, "projections", "rebuild", "--all") == 0
        assert tables(staging) == now
    finally:
        databases.drop(staging)


class _Stopped(Exception):
    """The archive's process stopping at a chosen step."""


@pytest.mark.parametrize("stop", ["mid-fold", "after the fold", "after the record"])
def test_an_archive_stopped_anywhere_folds_nothing_twice_when_run_again(
    store: tuple[str, Views],
    stop: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, live = store
    # Small flushes, so the run stops between two of them within the first partition.
    fold = functools.partial(baseline.fold, chunk=40, flush_every=100)
    flushes: list[int] = []
    real_flush = baseline.flush

    def flush_then_stop(*args: Any) -> None:
        flushes.append(args[-1])
        if len(flushes) == 3:
            raise _Stopped("mid-fold")
        real_flush(*args)

    def stopped(*_: Any) -> None:
        raise _Stopped(stop)

    with monkeypatch.context() as m:
        if stop == "mid-fold":
            m.setattr(baseline, "flush", flush_then_stop)
        elif stop == "after the fold":
            m.setattr(archive_store, "record", stopped)
        else:
            m.setattr(partitions, "detach_and_drop", stopped)
        with pytest.raises(_Stopped):
            archive(url, tmp_path / "archive", up_to=2 * SIZE, baseline=fold, settle=0)
    stopped_at = _baselines(url)
    expected_at = {"mid-fold": flushes[1:2], "after the fold": [SIZE], "after the record": [SIZE]}
    assert set(stopped_at.values()) == set(expected_at[stop]), stopped_at
    if stop == "mid-fold":
        assert 0 < stopped_at["line_totals"] < SIZE  # within the first partition

    said: list[str] = []
    done = archive(
        url, tmp_path / "archive", up_to=2 * SIZE, baseline=fold, settle=0, say=said.append
    )
    assert [a.partition for a in done] == ["stored_events_p1", "stored_events_p2"]
    if stop == "after the fold":
        assert "stored_events_p1: 0 facts folded into the views' baseline" in said
    assert _baselines(url) == {p.name: 2 * SIZE for p in GROUP}
    rebuild(url, GROUP)
    assert tables(url) == live


def test_a_rebuild_left_behind_before_an_archive_starts_again_from_the_baseline(
    store: tuple[str, Views], tmp_path: Path
) -> None:
    """Its tables started from position 0; the facts it had still to read are gone."""
    url, live = store
    failing: list[Projection] = [FailingProjection(p, after=4) for p in GROUP]
    with pytest.raises(RuntimeError, match="killed"):
        rebuild(url, failing, chunk=40, flush_every=40, slices=False)
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT DISTINCT position FROM projection_rebuilds").fetchall()
    assert len(left) == 1 and 0 < left[0][0] < SIZE, left
    archive(url, tmp_path / "archive", up_to=2 * SIZE, baseline=baseline.fold, settle=0)
    report = rebuild(url, GROUP)
    assert (report.resumed_from, report.baseline) == (0, 2 * SIZE)
    assert tables(url) == live


def test_an_archive_during_a_rebuild_makes_it_refuse_its_swap_and_start_again(
    store: tuple[str, Views], tmp_path: Path
) -> None:
    """The archive may have dropped facts the rebuild had not read yet."""
    url, live = store
    archived: list[Any] = []

    def archive_once(position: int, head: int) -> None:
        if not archived:
            archived.extend(
                archive(url, tmp_path / "archive", up_to=2 * SIZE, baseline=baseline.fold, settle=0)
            )

    with pytest.raises(RebuildOutrun, match=f"before position {2 * SIZE + 1}"):
        rebuild(url, GROUP, chunk=40, slices=False, progress=archive_once)
    assert len(archived) == 2
    assert tables(url) == live  # nothing swapped in
    report = rebuild(url, GROUP)
    assert (report.resumed_from, report.baseline) == (0, 2 * SIZE)
    assert tables(url) == live


def test_an_archive_after_one_without_a_baseline_goes_on_and_rebuilds_stay_refused(
    store: tuple[str, Views],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As if the first archive ran before the baselines existed."""
    url, live = store
    archive(url, tmp_path / "archive", up_to=SIZE, baseline=baseline.fold, settle=0)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM projection_baselines")
    said: list[str] = []
    done = archive(
        url, tmp_path / "archive", up_to=2 * SIZE, baseline=baseline.fold, settle=0, say=said.append
    )
    assert [a.partition for a in done] == ["stored_events_p2"]
    assert any(f"facts before position {SIZE + 1} were archived without one" in s for s in said)
    assert _baselines(url) == {}
    assert _cli(url, monkeypatch, tmp_path, "projections", "rebuild", "--all") == 1
    assert f"archived its facts before position {2 * SIZE + 1}" in capsys.readouterr().err
    assert tables(url) == live


def test_a_store_that_archived_moves_with_its_baseline_and_rebuilds_there(
    store: tuple[str, Views], databases: DatabaseFactory, tmp_path: Path
) -> None:
    """`pickpack database move` copies every table into a store its migrations made."""
    url, live = store
    archive(url, tmp_path / "archive", up_to=2 * SIZE, baseline=baseline.fold, settle=0)
    target = databases.empty()
    try:
        move(url, target)
        assert _baselines(target) == {p.name: 2 * SIZE for p in GROUP}
        rebuild(target, GROUP)
        assert tables(target) == live
    finally:
        databases.drop(target)


def test_a_rebuild_from_the_baseline_goes_by_slices_when_its_rows_do_not_fit(
    db_url: str, tmp_path: Path
) -> None:
    """Slices from a baseline: the fresh tables start from its rows, each slice folds only
    the facts after its position and merges into them. Orders with every fact archived
    (registered and scanned first here) have no fact in any slice: their rows come from
    the baseline alone."""
    partitions.resize(db_url, SIZE)
    partitions.ensure_ahead(db_url, ahead=12)
    store = EventStore.from_url(db_url, pool_size=1)
    try:
        early = [("acme", f"early-{i}") for i in range(3)]
        for t, o in early:
            order_commands.register(store, t, o, document(o, weighed=True))
        store.append_packing_events(
            [(scan(t, o, "0", "w", "GRM", packed=250), Attribution("u")) for t, o in early]
        )
    finally:
        store.close()
    record_mixed_store(db_url)
    catch_up(db_url)
    live = tables(db_url)
    archive(db_url, tmp_path / "archive", up_to=2 * SIZE, baseline=baseline.fold, settle=0)
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM order_facts WHERE order_id LIKE 'early-%%'"
        ).fetchone()
        scans_left = conn.execute(
            "SELECT count(*) FROM packing_events WHERE order_id LIKE 'early-%%'"
        ).fetchone()
    assert (left, scans_left) == ((0,), (0,)), "every fact of the early orders is archived"
    report = rebuild(db_url, GROUP, chunk=20, max_rows=BOUND)  # far below the store's rows
    assert (report.slices > 0, report.baseline) == (True, 2 * SIZE)
    assert tables(db_url) == live
