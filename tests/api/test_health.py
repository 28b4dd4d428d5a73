"""GET /health and GET /ready, including a database that goes away and comes back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from api.version import service_version
from devtools.harness.service import EXAMPLE_EVENT, Service, auth, start_service
from ledger.adapters.database import start_embedded


def test_health_answers_with_the_version(service: Service) -> None:
    response = service.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": service_version()}


def test_ready_when_the_database_is_migrated(service: Service) -> None:
    response = service.client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["migrations"] == "applied"


def test_ready_is_503_while_the_database_is_stopped_and_200_after(
    tmp_path: Path, embedded_root: Path
) -> None:
    pgdata = embedded_root / "pg"
    db = start_embedded(pgdata)  # a server of this test's own: we stop it
    server, thread, runtime, url = start_service(db.url, tmp_path, run_workers=True)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/ready").status_code == 200
            db.stop()
            down = client.get("/ready")
            assert down.status_code == 503
            assert down.json()["database"] == "unreachable"
            assert client.get("/health").status_code == 200
            db = start_embedded(pgdata)
            deadline = time.monotonic() + 20
            while client.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, "not ready after the database returned"
                time.sleep(0.1)
            # The pooled connections died with the server. A scanner retries until its
            # event is taken (the pool reconnects): it is recorded once. Until then the
            # answer is the spec's retryable 503 (tests/reliability/test_fault_outage.py times it).
            deadline = time.monotonic() + 30
            while True:
                try:
                    posted = client.post(
                        "/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=auth()
                    )
                    if posted.status_code == 200:
                        break
                    assert posted.status_code == 503, posted.text
                except httpx.TimeoutException:
                    pass
                assert time.monotonic() < deadline, "writes did not recover"
                time.sleep(0.2)
            feed = client.get("/pick-pack/demo/events", headers=auth())
            assert [e["eventId"] for e in feed.json()] == ["123"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
        db.stop()
