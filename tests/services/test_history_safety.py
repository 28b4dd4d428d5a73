"""Secrets are not history, stored hashes survive the deploy, one rebuild at a time, and
a recalculation job whose process died is finished at the next start."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from devtools.harness import fold
from devtools.harness.pg import DatabaseFactory
from devtools.harness.service import EXAMPLE_EVENT, Service, auth
from devtools.harness.support import packing_event, view_totals
from ledger.adapters.compression import state_json
from ledger.adapters.event_store import EventStore
from ledger.adapters.migrate import migrate, shipped_migrations
from ledger.domain.events import PackingEventRecorded
from ledger.domain.packing import Attribution
from ledger.services import recalculation as jobs
from projections.rebuild import RebuildBusy, rebuild
from projections.registry import PROJECTIONS

SECRET_TOKEN = "saas-very-secret-0123456789"


def states(url: str) -> list[bytes]:
    """Every stored state's JSON (decompressed: a compressed state would never show the
    token's text, whether it held it or not)."""
    with psycopg.connect(url) as conn:
        return [state_json(r[0]) for r in conn.execute("SELECT state FROM stored_events")]


def test_the_saas_token_is_never_stored_only_its_fingerprint(service: Service) -> None:
    headers = {**auth(), "saas-token": SECRET_TOKEN}
    r = service.client.post("/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
    assert r.status_code == 200, r.text
    r = service.client.post(
        "/pick-pack/demo/events", json={**EXAMPLE_EVENT, "eventId": "124"}, headers=headers
    )
    assert r.status_code == 200, r.text
    url = service.runtime.database.url
    found = states(url)
    assert found and not any(SECRET_TOKEN.encode() in s for s in found)
    prints = {orjson.loads(s)["saas_token"] for s in found}
    assert len(prints) == 1 and next(iter(prints)).startswith("hmac-sha256:")
    assert {orjson.loads(s)["user"] for s in found} == {"user-1"}
    feed = service.events().json()
    assert SECRET_TOKEN not in orjson.dumps(feed).decode()


def test_migration_0008_removes_tokens_stored_in_clear(databases: DatabaseFactory) -> None:
    url = databases.empty()
    # every other migration first (the append of today's code needs them), as on a
    # database that ran the later-numbered ones before this one shipped
    before = [m for m in shipped_migrations() if m.version != 8]
    migrate(url, before)
    # The way events were written before: the token in clear, and plain JSON (no state
    # was stored compressed before migration 0008 shipped).
    store = EventStore.from_url(url, compress=False, pool_size=1, max_overflow=1)
    try:
        store.append_packing_events(
            [(packing_event("s1", packed=1), Attribution("u", SECRET_TOKEN))]
        )
    finally:
        store.close()
    assert any(SECRET_TOKEN.encode() in s for s in states(url))
    migrate(url)
    found = states(url)
    assert found and not any(SECRET_TOKEN.encode() in s for s in found)
    # still the library's JSON, decodable into the event class
    store = EventStore.from_url(url, pool_size=1, max_overflow=1)
    try:
        [stored] = store.recorder.select_notifications(start=1, limit=10)
        event = store.mapper.to_domain_event(stored)
    finally:
        store.close()
    assert isinstance(event, PackingEventRecorded)
    assert event.saas_token is None and event.user == "u" and event.packed == 1
    databases.drop(url)


def test_a_retry_of_an_event_hashed_before_the_canonical_form_is_a_duplicate(
    service: Service,
) -> None:
    r = service.post_event(EXAMPLE_EVENT)
    assert r.status_code == 200
    event = packing_event(
        "123", order_id="123", product_id="123", unit="H87", event_time=EXAMPLE_EVENT["timestamp"],
        picked=1, packed=1, delivery_cycle=EXAMPLE_EVENT["deliveryCycle"], supplier_id="123",
        book_product=True,
    )  # fmt: skip
    with psycopg.connect(service.runtime.database.url) as conn:  # as a release before stored it
        conn.execute(
            "UPDATE packing_events SET content_hash = %s WHERE event_id = '123'",
            (event.legacy_content_hash(),),
        )
    assert service.post_event(EXAMPLE_EVENT).status_code == 200
    assert service.post_event({**EXAMPLE_EVENT, "packedAmount": 2}).status_code == 409


def test_two_rebuilds_at_once_never_double_count(db_url: str) -> None:
    events = [packing_event(f"s{i}", order_id=f"o{i % 7}", packed=i % 3 + 1) for i in range(300)]
    store = EventStore.from_url(db_url, pool_size=1, max_overflow=1)
    try:
        store.append_packing_events([(e, Attribution("u")) for e in events])
    finally:
        store.close()
    group = list(PROJECTIONS.values())
    # A rebuild in progress refuses a second one with a clear message.
    refused: list[BaseException] = []

    def second(position: int, head: int) -> None:
        if not refused:
            try:
                rebuild(db_url, group, chunk=20)
            except RebuildBusy as exc:
                refused.append(exc)

    rebuild(db_url, group, chunk=20, flush_every=40, progress=second)
    assert len(refused) == 1 and "being rebuilt by another process" in str(refused[0])
    # Two started together: one runs, the other refuses or runs after; never both at once.
    outcomes: list[Any] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(rebuild(db_url, group, chunk=10, flush_every=30))
        except RebuildBusy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == 2
    assert view_totals(db_url, "demo") == fold.line_totals(events)


def test_a_job_interrupted_while_queueing_is_finished_at_the_next_start(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore.from_url(db_url, pool_size=2, max_overflow=2)
    try:
        store.append_packing_events(
            [
                (packing_event(f"s{i}", order_id=f"o{i}", packed=1), Attribution("u"))
                for i in range(5)
            ]
        )
        monkeypatch.setattr(jobs, "JOB_CHUNK", 2)
        queue_order = jobs._queue_order
        calls = 0

        def dies_on_the_third(*args: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise SystemExit("the process died")
            queue_order(*args)

        monkeypatch.setattr(jobs, "_queue_order", dies_on_the_third)
        ids = [f"o{i}" for i in range(5)]
        with pytest.raises(SystemExit):
            jobs.create_job(store, "demo", "MANUAL", ids, "job-1")
        monkeypatch.setattr(jobs, "_queue_order", queue_order)
        assert jobs.get_job(store, "demo", "job-1")["jobStatus"] == "IN_PROGRESS"  # type: ignore[index]
        assert jobs.resume_jobs(store) == 1
        assert jobs.resume_jobs(store) == 0  # complete now: nothing left to resume
        with psycopg.connect(db_url) as conn:
            queued = [
                r[0]
                for r in conn.execute(
                    "SELECT order_id FROM recalculation_outbox WHERE job_id = 'job-1' ORDER BY seq"
                )
            ]
            complete = conn.execute("SELECT complete FROM recalculation_jobs").fetchone()
        assert queued == ids  # each once, in the job's order
        assert complete == (True,)
    finally:
        store.close()


def test_a_job_still_being_queued_by_a_live_process_is_not_resumed(db_url: str) -> None:
    store = EventStore.from_url(db_url, pool_size=2, max_overflow=2)
    try:
        with store.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO recalculation_jobs (tenant, job_id, job_type, order_ids) "
                "VALUES ('demo', 'job-2', 'MANUAL', '[\"o1\"]')"
            )
        with jobs._job_lock(store, "demo", "job-2") as held:  # its creator, alive
            assert held
            assert jobs.resume_jobs(store) == 0
        assert jobs.resume_jobs(store) == 1  # the creator is gone
    finally:
        store.close()
