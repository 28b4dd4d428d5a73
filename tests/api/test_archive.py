"""`pickpack archive`: whole partitions to verified files, then dropped; what the service
answers afterwards (docs/explanation/retention.md; the rules: docs/explanation/semantics.md,
"Retention: the duplicate window").

Expectations from the rules: the files hold exactly the archived facts in the export
format and check against their manifest and SHA256SUMS; a damaged file is named; the
views keep their totals; a scan timestamped before the cut-off is refused with 409
naming the cut-off (even the retry of an archived scan: it can no longer be told from a
new one); a newer scan is recorded; GET /events from before the cut-off is refused with
400 naming it, and every page says from when the store holds scans.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import zstandard
from eventsourcing import persistence as es_persistence

from cli.main import main
from devtools.harness.service import Service, auth
from devtools.harness.support import packing_event, scan_body, view_totals, wait_until
from ledger.adapters import archive_store, partitions
from ledger.services.archive import ArchiveError, archive, verify
from ledger.services.event_import import import_lines
from projections.baseline import fold

SIZE = 10


def _scan(i: int, tenant: str = "demo") -> dict[str, object]:
    return scan_body(
        packing_event(
            f"a{i}",
            tenant=tenant,
            order_id=f"o{i % 3}",
            product_id=f"p{i % 2}",
            event_time=f"2024-05-01T10:00:{i:02d}.000Z",
            picked=1,
            packed=1,
        )
    )


def _order(order_id: str) -> dict[str, object]:
    """An order document of one entry (ten pieces of p0)."""
    return {
        "id": order_id,
        "siteCode": "main",
        "entries": [{"entryId": "e0", "productId": "p0", "totalCount": 10, "orderUnit": "H87"}],
    }


def _caught_up(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return archive_store.projected_up_to(conn) >= partitions.drawn(conn)


@pytest.fixture
def archived(service: Service, db_url: str, tmp_path: Path) -> tuple[Service, str, Path, dict]:
    """25 scans of two tenants over three partitions of 10 positions; the first two
    partitions archived to tmp_path/archive."""
    partitions.resize(db_url, SIZE)
    for i in range(25):
        if i % 5 == 0:
            partitions.ensure_ahead(db_url)
        tenant = "demo" if i % 4 else "other"
        assert service.post_event(_scan(i, tenant), tenant=tenant).status_code == 200
    wait_until(lambda: _caught_up(db_url))
    totals = view_totals(db_url)
    done = archive(db_url, tmp_path / "archive", up_to=20, baseline=fold, settle=0)
    service.runtime.retention.refresh()
    assert [a.partition for a in done] == ["stored_events_p1", "stored_events_p2"]
    # Scans only: every order is open. p1 holds o0-o2 of both tenants; p2 o0-o2 of demo
    # and o0-o1 of other.
    assert [a.open_orders for a in done] == [6, 5]
    return service, db_url, done[0].directory.parent, totals


def test_the_archive_counts_the_orders_it_leaves_open(
    service: Service, db_url: str, tmp_path: Path
) -> None:
    """An order with archived facts takes no more commands (409): the archive says how many
    such orders it leaves open. Packed and cancelled orders are closed; an order known
    from its scans only is open."""
    partitions.resize(db_url, SIZE)
    partitions.ensure_ahead(db_url, ahead=3)
    for o in ("packed", "cancelled", "open"):
        put = service.client.put(f"/pick-pack/demo/orders/{o}", json=_order(o), headers=auth())
        assert put.status_code in (200, 201), put.text
    for o, status in (("packed", "PACKED"), ("cancelled", "CANCELLED")):
        patched = service.client.patch(
            f"/pick-pack/demo/orders/{o}", json={"packingStatus": status}, headers=auth()
        )
        assert patched.status_code == 200, patched.text
    # Positions 1-5 above; 6 a scan of an order never registered; 7-12 scans of "open".
    assert service.post_event({**_scan(0), "orderNumber": "scanned-only"}).status_code == 200
    for i in range(1, 7):
        assert service.post_event({**_scan(i), "orderNumber": "open"}).status_code == 200
    wait_until(lambda: _caught_up(db_url))
    done = archive(db_url, tmp_path / "archive", up_to=SIZE, baseline=fold, settle=0)
    assert [(a.partition, a.open_orders) for a in done] == [("stored_events_p1", 2)]


def test_the_files_hold_the_archived_facts_and_check(archived: tuple) -> None:
    _, url, root, _ = archived
    first = verify(root / "stored_events_p1")
    assert first["facts"] == SIZE and first["partition"] == {
        "name": "stored_events_p1",
        "from": 1,
        "upTo": 11,
    }
    assert {f["tenant"]: f["lines"] for f in first["files"]} == {"demo": 7, "other": 3}
    lines = []
    for f in first["files"]:
        path = root / "stored_events_p1" / f["file"]
        raw = path.read_bytes()
        lines += zstandard.ZstdDecompressor().decompressobj().decompress(raw).splitlines()
        sums = (root / "stored_events_p1" / "SHA256SUMS").read_text()
        assert f"{hashlib.sha256(raw).hexdigest()}  {f['file']}" in sums  # sha256sum -c
    assert sorted(int(line.split(b'"position":')[1].split(b",")[0]) for line in lines) == list(
        range(1, 11)
    )
    with psycopg.connect(url) as conn:
        left = [p.name() for p in partitions.partitions(conn)]
        stored = conn.execute("SELECT min(notification_id), count(*) FROM stored_events").fetchone()
    assert "stored_events_p1" not in left and "stored_events_p2" not in left
    assert stored == (21, 5)


def test_a_damaged_file_is_named(archived: tuple) -> None:
    _, _, root, _ = archived
    path = root / "stored_events_p2" / "demo.jsonl.zst"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ArchiveError, match=r"demo\.jsonl\.zst"):
        verify(root / "stored_events_p2")


def test_views_keep_their_totals_and_old_scans_are_refused_naming_the_cutoff(
    archived: tuple,
) -> None:
    service, url, _, totals = archived
    assert view_totals(url) == totals
    cutoff = "2024-05-01T10:00:19.001Z"  # the newest archived scan's timestamp + 1 ms
    retry = service.post_event(_scan(3))  # an archived scan, sent again
    older = service.post_event({**_scan(40), "timestamp": "2024-05-01T09:00:00.000Z"})
    for refused in (retry, older):
        assert refused.status_code == 409, refused.text
        assert refused.json()["detailInfo"].startswith(
            f"timestamp: scans before {cutoff} are archived"
        )
    assert service.post_event(_scan(41)).status_code == 200
    assert service.post_event(_scan(21)).status_code == 200  # retained: a duplicate, 200


def test_reading_events_from_before_the_cutoff_says_so(archived: tuple) -> None:
    service, _, _, _ = archived
    before = service.events(timestamp="2024-05-01T00:00:00Z")
    assert before.status_code == 400
    assert "events before 2024-05-01T10:00:19.001Z are archived" in before.json()["detailInfo"]
    after = service.events(timestamp="2024-05-01T10:00:19.001Z")
    assert after.status_code == 200
    assert after.headers["Pickpack-Retained-From"] == "2024-05-01T10:00:19.001Z"
    assert sorted(e["eventId"] for e in after.json()) == [f"a{i}" for i in range(21, 25) if i % 4]


def test_streams_go_on_from_their_archived_versions_and_commands_on_archived_orders_say_so(
    archived: tuple,
) -> None:
    service, url, _, _ = archived
    # o1/p1 is the line of scans 1, 7, 13 and 19 (tenant demo), all four archived.
    assert service.post_event(_scan(45)).status_code == 200  # o0/p1
    assert (
        service.post_event({**_scan(46), "orderNumber": "o1", "productId": "p1"}).status_code == 200
    )
    with psycopg.connect(url) as conn:
        versions = [
            r[0]
            for r in conn.execute(
                "SELECT s.originator_version FROM stored_events s JOIN packing_events p "
                "ON p.position = s.notification_id WHERE p.tenant = 'demo' AND p.order_id = 'o1' "
                "AND p.product_id = 'p1' ORDER BY s.notification_id"
            )
        ]
    assert versions == [5]  # after the four archived versions, not 1 again
    # Scans of o2 are archived.
    refused = service.client.put("/pick-pack/demo/orders/o2", json=_order("o2"), headers=auth())
    assert refused.status_code == 409, refused.text
    assert refused.json()["detailInfo"] == (
        "orderId: facts of order 'o2' recorded before 2024-05-01T10:00:19.001Z are archived; "
        "a command on it needs its whole history"
    )
    assert service.client.put(
        "/pick-pack/demo/orders/new-order", json=_order("new-order"), headers=auth()
    ).status_code in (200, 201)


def test_an_archive_imported_back_into_its_own_store_is_refused(archived: tuple) -> None:
    service, _, root, _ = archived
    raw = (root / "stored_events_p1" / "demo.jsonl.zst").read_bytes()
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(raw).splitlines()
    report = import_lines(service.runtime.store, "demo", lines)
    assert (report.tally.read, report.tally.recorded, report.tally.refused) == (7, 0, 7)
    assert report.tally.problems[0] == (
        "a1: timestamp before this store's cut-off 2024-05-01T10:00:19.001Z "
        "(its scans that old are archived)"
    )


def test_a_rebuild_after_an_archive_starts_from_the_baseline_and_keeps_the_totals(
    archived: tuple,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, url, _, totals = archived
    monkeypatch.setenv("PICKPACK_DATABASE_URL", url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "data"))
    assert main(["projections", "rebuild", "--all"]) == 0
    assert "5 events" in capsys.readouterr().out  # the five retained: 21 to 25
    assert view_totals(url) == totals
    assert main(["projections", "rebuild", "--all", "--tenant", "demo"]) == 0
    assert view_totals(url) == totals


def test_a_rebuild_after_an_archive_without_a_baseline_is_refused_rather_than_losing_totals(
    archived: tuple,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """An archive recorded before the baselines existed: its facts are in no baseline."""
    _, url, _, totals = archived
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM projection_baselines")
    monkeypatch.setenv("PICKPACK_DATABASE_URL", url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "data"))
    for tenant in ([], ["--tenant", "demo"]):
        assert main(["projections", "rebuild", "--all", *tenant]) == 1
        assert "archived its facts before position 21" in capsys.readouterr().err
        assert view_totals(url) == totals


def test_the_change_feed_and_the_export_below_the_first_retained_position_say_so(
    archived: tuple,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    service, url, _, _ = archived
    gone = service.client.get("/pick-pack/demo/changes", params={"after": 0}, headers=auth())
    assert gone.status_code == 410
    assert gone.json()["detailInfo"].startswith(
        "after: facts up to position 20 are archived (cut-off 2024-05-01T10:00:19.001Z); "
        "ask again with after=20"
    )
    page = service.client.get("/pick-pack/demo/changes", params={"after": 20}, headers=auth())
    assert page.status_code == 200
    assert [i["position"] for i in page.json()["items"]] == [22, 23, 24]  # scans 21-23 (demo)
    monkeypatch.setenv("PICKPACK_DATABASE_URL", url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "data"))
    assert main(["events", "export", "--tenant", "demo"]) == 6
    assert "facts up to position 20 are archived" in capsys.readouterr().err
    assert main(["events", "export", "--tenant", "demo", "--after", "20"]) == 0
    assert capsys.readouterr().out.count("\n") == 3


def test_the_history_says_where_it_starts_and_an_as_of_of_an_archived_order_is_gone(
    archived: tuple,
) -> None:
    service, _, _, _ = archived
    history = service.client.get("/pick-pack/demo/orders/o2/history", headers=auth())
    assert history.status_code == 200
    assert history.json()["archivedBefore"] == "2024-05-01T10:00:19.001Z"
    assert [i["data"]["eventId"] for i in history.json()["items"]] == ["a23"]  # retained
    as_of = service.client.get(
        "/pick-pack/demo/orders/o2", params={"asOf": "2030-01-01T00:00:00Z"}, headers=auth()
    )
    assert as_of.status_code == 410
    assert as_of.json()["detailInfo"].startswith(
        "asOf: facts of order 'o2' recorded before 2024-05-01T10:00:19.001Z are archived"
    )


def test_an_order_whose_facts_are_all_in_the_first_archive_names_that_archives_cutoff(
    archived: tuple,
) -> None:
    """Tenant other's o2 has scan 8 in the first archived partition (cut-off: its newest
    scan, 10:00:09, + 1 ms), none in the second (cut-off 10:00:19.001), and scan 20
    retained. Its facts recorded before the first cut-off are what is archived: the
    answers name that one, not the store's latest."""
    service, _, _, _ = archived
    first = "2024-05-01T10:00:09.001Z"
    other = auth("other")
    history = service.client.get("/pick-pack/other/orders/o2/history", headers=other)
    assert history.status_code == 200
    assert history.json()["archivedBefore"] == first
    assert [i["data"]["eventId"] for i in history.json()["items"]] == ["a20"]
    as_of = service.client.get(
        "/pick-pack/other/orders/o2", params={"asOf": "2030-01-01T00:00:00Z"}, headers=other
    )
    assert as_of.status_code == 410
    assert as_of.json()["detailInfo"].startswith(
        f"asOf: facts of order 'o2' recorded before {first} are archived"
    )
    refused = service.client.put("/pick-pack/other/orders/o2", json=_order("o2"), headers=other)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detailInfo"].startswith(
        f"orderId: facts of order 'o2' recorded before {first} are archived"
    )


class _Stopped(Exception):
    """The archive's process stopping at a chosen step."""


def test_a_run_stopped_after_its_record_resumes_with_the_drop(
    service: Service, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run interrupted anywhere resumes from its first unfinished step (the archive's
    module says so): here one that recorded the archive, which takes the partition's order
    facts out of their index, and stopped before detaching the partition."""
    partitions.resize(db_url, SIZE)
    put = service.client.put("/pick-pack/demo/orders/r1", json=_order("r1"), headers=auth())
    assert put.status_code in (200, 201), put.text
    for i in range(12):
        if i % 5 == 0:
            partitions.ensure_ahead(db_url)
        assert service.post_event(_scan(i)).status_code == 200
    wait_until(lambda: _caught_up(db_url))

    def stopped(url: str, part: partitions.Partition) -> None:
        raise _Stopped(part.name())

    with monkeypatch.context() as m:
        m.setattr(partitions, "detach_and_drop", stopped)
        with pytest.raises(_Stopped):
            archive(db_url, tmp_path / "archive", up_to=SIZE, baseline=fold, settle=0)
    done = archive(db_url, tmp_path / "archive", up_to=SIZE, baseline=fold, settle=0)
    assert [a.partition for a in done] == ["stored_events_p1"]
    with psycopg.connect(db_url) as conn:
        assert "stored_events_p1" not in [p.name() for p in partitions.partitions(conn)]
    assert verify(done[0].directory)["facts"] == done[0].facts


@pytest.mark.parametrize("stop", ["after the detach", "after the drop"])
def test_a_run_stopped_before_marking_its_drop_finishes_it_when_run_again(
    service: Service,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop: str,
) -> None:
    """The partition is no longer attached, so the next run's loop over the attached
    partitions never reaches it: the drop is still finished and marked (archives'
    `dropped_at`), and nothing of the partition stays behind."""
    partitions.resize(db_url, SIZE)
    for i in range(12):
        if i % 5 == 0:
            partitions.ensure_ahead(db_url)
        assert service.post_event(_scan(i)).status_code == 200
    wait_until(lambda: _caught_up(db_url))
    detach_and_drop = partitions.detach_and_drop

    def detach_only(url: str, part: partitions.Partition) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for table in partitions.TABLES:
                conn.execute(f"ALTER TABLE {table} DETACH PARTITION {part.name(table)}")
        raise _Stopped(part.name())

    def stopped(conn: Any, part: partitions.Partition) -> None:
        raise _Stopped(part.name())

    with monkeypatch.context() as m:
        if stop == "after the detach":
            m.setattr(partitions, "detach_and_drop", detach_only)
        else:
            m.setattr(archive_store, "mark_dropped", stopped)
        with pytest.raises(_Stopped):
            archive(db_url, tmp_path / "archive", up_to=SIZE, baseline=fold, settle=0)
    assert partitions.detach_and_drop is detach_and_drop
    said: list[str] = []
    archive(db_url, tmp_path / "archive", up_to=SIZE, baseline=fold, settle=0, say=said.append)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT dropped_at IS NOT NULL FROM archives WHERE partition_name = 'stored_events_p1'"
        ).fetchone()
        left = conn.execute(
            "SELECT to_regclass('stored_events_p1'), to_regclass('packing_events_p1')"
        ).fetchone()
    assert row == (True,)
    assert left == (None, None)
    assert "stored_events_p1: finishing the drop an earlier run left" in said


def failing_while(
    down: list[bool], db_url: str, error: Exception
) -> Callable[[], AbstractContextManager[psycopg.Connection[Any]]]:
    """Connections to `db_url`, except that `error` is raised while `down` holds anything."""

    @contextmanager
    def connect() -> Iterator[psycopg.Connection[Any]]:
        if down:
            raise error
        with psycopg.connect(db_url) as conn:
            yield conn

    return connect


def test_a_cutoff_that_cannot_be_read_in_time_is_not_trusted(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan must not be judged against a cut-off older than the archive's settle time
    (a retry of a scan archived meanwhile would count twice): 503, not a guess."""
    down: list[bool] = []
    connect = failing_while(down, db_url, psycopg.OperationalError("the database went away"))
    monkeypatch.setattr(archive_store, "CUTOFF_STALE_SECONDS", 0.2)
    cutoff = archive_store.RetentionCutoff(connect, seconds=0.05)
    assert cutoff.current() == (None, 0)
    down.append(True)
    time.sleep(0.3)
    with pytest.raises(archive_store.CutoffUnknown):
        cutoff.current()


def test_a_cutoff_is_trusted_again_once_the_database_answers_again(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading thread outlives any failure of the database: the pool's timeout comes
    wrapped in the library's OperationalError (not a psycopg.Error), and a thread that died
    of it left every scan answering 503 after the database came back."""
    down: list[bool] = []
    unavailable = es_persistence.OperationalError("couldn't get a connection after 1.00 sec")
    connect = failing_while(down, db_url, unavailable)
    monkeypatch.setattr(archive_store, "CUTOFF_STALE_SECONDS", 0.2)
    cutoff = archive_store.RetentionCutoff(connect, seconds=0.05).start()
    try:
        down.append(True)
        time.sleep(0.3)
        with pytest.raises(archive_store.CutoffUnknown):
            cutoff.current()
        down.clear()
        time.sleep(0.3)
        assert cutoff.current() == (None, 0)
    finally:
        cutoff.stop()


def test_a_stale_cutoff_is_read_again_soon_after_the_database_answers(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failed read the thread tries again within CUTOFF_RETRY_SECONDS, not a whole
    round later: once stale, the cut-off answers every scan 503, and with reads 5 s apart
    the first scan after an outage waited up to 5 s more (test_fault_outage failed in CI:
    first 200 5.5 s after the database)."""
    down: list[bool] = []
    unavailable = es_persistence.OperationalError("couldn't get a connection after 1.00 sec")
    connect = failing_while(down, db_url, unavailable)
    monkeypatch.setattr(archive_store, "CUTOFF_STALE_SECONDS", 0.2)
    monkeypatch.setattr(archive_store, "CUTOFF_RETRY_SECONDS", 0.1)
    cutoff = archive_store.RetentionCutoff(connect, seconds=1.5).start()
    try:
        down.append(True)
        time.sleep(1.7)  # the round at 1.5 s failed
        with pytest.raises(archive_store.CutoffUnknown):
            cutoff.current()
        down.clear()
        back = time.monotonic()
        trusted = None
        while time.monotonic() - back < 1.0:  # the next full round would be at 3.0 s
            try:
                trusted = cutoff.current()
                break
            except archive_store.CutoffUnknown:
                time.sleep(0.02)
        assert trusted == (None, 0), "the cut-off was not read again within 1 s"
    finally:
        cutoff.stop()
