"""`pickpack emporix import-events` and `reconcile` against the fake Emporix, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.auth import MANAGE
from cli.main import main
from devtools.fake_emporix import FakeEmporix
from devtools.fake_order_service import FakeOrderService
from devtools.harness.service import EXAMPLE_EVENT, Service, auth, running
from devtools.harness.support import FAST_RECALCULATION as FAST
from devtools.harness.support import packing_event, wait_for
from ledger.adapters import feed_store
from ledger.adapters.event_store import EventStore
from ledger.domain import orders
from ledger.domain.packing import Attribution
from tests.helpers.pack_station import finish

TENANT = "demo"


def emporix_event(n: int, **change: Any) -> dict[str, Any]:
    """The n-th event as Emporix's feed shows it (OrderEntryEventResponse)."""
    return {
        "eventId": f"emp-{n:03d}",
        "productId": "p1",
        "orderNumber": f"o{n % 3}",
        "timestamp": f"2026-11-02T08:{n // 60:02d}:{n % 60:02d}.250+01:00",
        "pickedAmount": 1,
        "packedAmount": 1,
        "canceledAmount": 0,
        "packedAmountInPc": 1,
        "user": f"picker-{n % 4}",
        "site": f"store-{n % 2}",
        "unit": "H87",
        **change,
    }


@pytest.fixture
def emporix() -> Iterator[FakeEmporix]:
    fake = FakeEmporix().start()
    fake.add_client("importer", "s3cret", TENANT)
    yield fake
    fake.stop()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "data"))
    return db_url


def import_events(fake: FakeEmporix, *extra: str) -> int:
    return main(
        [
            "emporix",
            "import-events",
            "--tenant",
            TENANT,
            "--url",
            fake.url,
            "--client-id",
            "importer",
            "--client-secret",
            "s3cret",
            "--page-size",
            "10",
            *extra,
        ]
    )


def reconcile(fake: FakeEmporix, *extra: str) -> int:
    return main(
        [
            "emporix",
            "reconcile",
            "--tenant",
            TENANT,
            "--url",
            fake.url,
            "--client-id",
            "importer",
            "--client-secret",
            "s3cret",
            *extra,
        ]
    )


def recorded(url: str) -> dict[str, dict[str, Any]]:
    store = EventStore.from_url(url)
    try:
        with store.datastore.get_connection() as conn:
            states = feed_store.events_after(conn, TENANT, None, 0, 10_000)
        return {s["event_id"]: s for s in states}
    finally:
        store.close()


def summary(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_import_records_every_event_with_its_own_id_time_user_and_site(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emporix.add_events(TENANT, [emporix_event(n) for n in range(25)])
    assert import_events(emporix) == 0
    out = capsys.readouterr().out
    assert summary(out) == ("read 25, recorded 25, already there 0, conflicting 0, refused 0")
    events = recorded(cli_env)
    assert len(events) == 25
    for n in (0, 7, 24):
        state = events[f"emp-{n:03d}"]
        assert state["user"] == f"picker-{n % 4}"  # Emporix's user, not the importer
        assert state["site"] == f"store-{n % 2}"
        assert state["event_time"] == f"2026-11-02T07:{n // 60:02d}:{n % 60:02d}.250Z"
        assert (state["order_id"], state["packed"]) == (f"o{n % 3}", 1)
    # Pages 0 and 1 (the same: numbering from 1), then 2 and 3, the short one ending it.
    pages = [p for m, p in emporix.requests() if m == "GET"]
    assert [p.split("?")[1] for p in pages] == [f"pageNumber={n}&pageSize=10" for n in (0, 1, 2, 3)]


def test_a_feed_numbering_its_pages_from_0_is_read_from_its_first_page(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeEmporix(first_page=0).start()
    try:
        fake.add_client("importer", "s3cret", TENANT)
        fake.add_events(TENANT, [emporix_event(n) for n in range(25)])
        assert import_events(fake) == 0
        assert summary(capsys.readouterr().out).startswith("read 25, recorded 25,")
        assert reconcile(fake) == 0
    finally:
        fake.stop()
    assert len(recorded(cli_env)) == 25


def test_a_rerun_finds_every_event_already_there(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emporix.add_events(TENANT, [emporix_event(n) for n in range(20)])
    assert import_events(emporix) == 0
    capsys.readouterr()
    assert import_events(emporix) == 0
    assert summary(capsys.readouterr().out) == (
        "read 20, recorded 0, already there 20, conflicting 0, refused 0"
    )
    assert len(recorded(cli_env)) == 20


def test_since_reads_only_later_events(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emporix.add_events(TENANT, [emporix_event(n) for n in range(12)])
    assert import_events(emporix, "--since", "2026-11-02T07:00:06Z") == 0
    assert summary(capsys.readouterr().out).startswith("read 6, recorded 6,")
    assert sorted(recorded(cli_env)) == [f"emp-{n:03d}" for n in range(6, 12)]


def test_a_source_failing_mid_way_stops_and_the_next_run_resumes(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emporix.add_events(TENANT, [emporix_event(n) for n in range(35)])
    emporix.fail_page(3, times=1)
    assert import_events(emporix, "--retries", "0") == 8  # the source failed (cli.md)
    captured = capsys.readouterr()
    assert "run again to resume" in captured.err
    assert len(recorded(cli_env)) == 20  # pages 1 and 2, each committed whole
    before = len(emporix.requests())
    assert import_events(emporix, "--retries", "0") == 0
    captured = capsys.readouterr()
    assert "resumed at page 3" in captured.err
    # The summary covers the whole import, both runs.
    assert summary(captured.out) == (
        "read 35, recorded 35, already there 0, conflicting 0, refused 0"
    )
    resumed = [p for m, p in emporix.requests()[before:] if m == "GET"]
    assert "pageNumber=3" in resumed[0] and not any("pageNumber=1&" in p for p in resumed)
    assert len(recorded(cli_env)) == 35


def test_retries_ride_out_a_brief_failure(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emporix.add_events(TENANT, [emporix_event(n) for n in range(15)])
    emporix.fail_page(2, times=1)
    from ledger.adapters.emporix import EmporixSource
    from ledger.services.emporix_import import import_events as run

    store = EventStore.from_url(cli_env)
    source = EmporixSource(emporix.url, TENANT, "importer", "s3cret", retries=1, pause=0.01)
    try:
        tally, first = run(store, source, TENANT, None, 10)
    finally:
        source.close()
        store.close()
    assert (tally.read, tally.recorded, first) == (15, 15, 1)


def test_a_conflicting_event_is_counted_and_the_first_recording_kept(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = EventStore.from_url(cli_env)
    try:
        # The same eventId, recorded here first with other content (packed 5, not 1).
        store.append_packing_events(
            [(packing_event("emp-001", order_id="o1", packed=5), Attribution("here", None))]
        )
    finally:
        store.close()
    emporix.add_events(TENANT, [emporix_event(n) for n in range(4)])
    emporix.add_events(TENANT, [emporix_event(9, eventId="bad", site=None)])
    assert import_events(emporix) == 1
    captured = capsys.readouterr()
    assert summary(captured.out) == (
        "read 5, recorded 3, already there 0, conflicting 1, refused 1"
    )
    assert "emp-001: recorded here with other content" in captured.err
    assert "bad: site" in captured.err
    assert recorded(cli_env)["emp-001"]["packed"] == 5


def test_an_imported_event_for_a_cancelled_order_is_refused(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = EventStore.from_url(cli_env)
    try:
        store.run_order_command(
            TENANT, "o1", lambda c: orders.register(c.state, {"id": "o1", "entries": []})
        )
        store.run_order_command(
            TENANT, "o1", lambda c: orders.change_status(c.state, "CANCELLED", "op")
        )
    finally:
        store.close()
    emporix.add_events(TENANT, [emporix_event(1)])
    assert import_events(emporix) == 1
    captured = capsys.readouterr()
    assert summary(captured.out).endswith("refused 1")
    assert "order is CANCELLED here" in captured.err


def test_the_api_takes_the_user_from_the_token_never_from_the_body(service: Service) -> None:
    r = service.post_event({**EXAMPLE_EVENT, "eventId": "u1", "user": "someone-else"})
    assert r.status_code == 200, r.text
    [item] = [e for e in service.events().json() if e["eventId"] == "u1"]
    assert item["user"] == "user-1"


def test_reconcile_lists_differences_and_agrees_after_the_import(
    emporix: FakeEmporix, cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emporix.add_events(TENANT, [emporix_event(n) for n in range(6)])
    assert reconcile(emporix) == 1
    out = capsys.readouterr().out
    assert "o0\tp1\tH87\t2/2/0\t0/0/0" in out
    assert import_events(emporix) == 0
    capsys.readouterr()
    assert reconcile(emporix) == 0
    # A scan here after the switch: a difference, unless --until names the switch.
    store = EventStore.from_url(cli_env)
    try:
        store.append_packing_events(
            [
                (
                    packing_event(
                        "late", order_id="o0", packed=1, event_time="2026-11-03T09:00:00.000Z"
                    ),
                    Attribution("here", None),
                )
            ]
        )
    finally:
        store.close()
    capsys.readouterr()
    assert reconcile(emporix) == 1
    assert "o0\tp1\tH87\t2/2/0\t2/3/0" in capsys.readouterr().out
    assert reconcile(emporix, "--until", "2026-11-03T00:00:00Z") == 0


def test_a_half_packed_order_imported_then_finished_here_sends_the_full_totals(
    emporix: FakeEmporix, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packed 3 of 5 on Emporix, the rest here: the Order Service gets 5, not 2."""
    order_service = FakeOrderService().start()
    env = {**FAST, "PICKPACK_ORDER_SERVICE_URL": order_service.url}
    try:
        with running(db_url, tmp_path, env) as svc:
            document = {
                "id": "half",
                "siteCode": "main",
                "entries": [
                    {"entryId": "e1", "productId": "p1", "totalCount": 5, "orderUnit": "H87"}
                ],
            }
            r = svc.client.put(
                f"/pick-pack/{TENANT}/orders/half", json=document, headers=auth(TENANT)
            )
            assert r.status_code in (200, 201), r.text
            emporix.add_events(
                TENANT,
                [
                    emporix_event(1, orderNumber="half", packedAmount=2, pickedAmount=2),
                    emporix_event(2, orderNumber="half", packedAmount=1, pickedAmount=1),
                ],
            )
            monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
            monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "cli"))
            assert import_events(emporix) == 0
            for event_id, amount in (("here-1", 1), ("here-2", 1)):
                r = svc.post_event(
                    {
                        **EXAMPLE_EVENT,
                        "eventId": event_id,
                        "orderNumber": "half",
                        "productId": "p1",
                        "packedAmount": amount,
                        "unit": "H87",
                    }
                )
                assert r.status_code == 200, r.text
            r = finish(svc, "half")
            assert r.status_code == 200, r.text
            [sent] = wait_for(lambda: order_service.calculations("half"))
            [entry] = sent.body["entries"]
            assert (entry["entryId"], entry["deliveredAmount"]) == ("e1", 5)
            # Emporix's scans and ours, all four kept, each with its own user.
            events = recorded(db_url)
            assert {k: events[k]["user"] for k in ("emp-001", "emp-002", "here-1")} == {
                "emp-001": "picker-1",
                "emp-002": "picker-2",
                "here-1": "user-1",
            }
    finally:
        order_service.stop()


def test_the_fake_refuses_a_wrong_secret_and_a_foreign_tenant(emporix: FakeEmporix) -> None:
    import httpx

    def token(**form: str) -> httpx.Response:
        return httpx.post(
            f"{emporix.url}/oauth/token", data={"grant_type": "client_credentials", **form}
        )

    assert (
        token(client_id="importer", client_secret="nope", scope=f"tenant={TENANT}").status_code
        == 401
    )
    assert (
        token(client_id="importer", client_secret="s3cret", scope="tenant=other").status_code == 400
    )
    ok = httpx.post(
        f"{emporix.url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "importer",
            "client_secret": "s3cret",
            "scope": f"tenant={TENANT} {MANAGE}",
        },
    )
    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer"
    feed = httpx.get(
        f"{emporix.url}/pick-pack/other/events",
        headers={"Authorization": f"Bearer {ok.json()['access_token']}"},
    )
    assert feed.status_code == 403
    assert httpx.get(f"{emporix.url}/pick-pack/{TENANT}/events").status_code == 401
