"""Request log, request ids and Prometheus metrics, over real HTTP against real PostgreSQL."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from api.observability import AccessLog
from devtools.fake_order_service import FakeOrderService
from devtools.harness.service import EXAMPLE_EVENT, Service, auth, start_service, token
from projections.registry import PROJECTIONS
from projections.runner import step

ORDER = {"id": "o1", "siteCode": "main", "entries": [{"entryId": "e1", "productId": "p1"}]}


@dataclass
class Observed:
    service: Service
    log: io.BytesIO

    def lines(self, expected: int) -> list[dict[str, Any]]:
        """The request log, once `expected` lines are there (each is written just after
        its response is sent), checking no more than that came."""
        wait_until(lambda: self.log.getvalue().count(b"\n") >= expected)
        time.sleep(0.05)
        return [orjson.loads(line) for line in self.log.getvalue().splitlines()]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of GET /metrics (no token sent), by name and sorted labels."""
        # A connection of its own: uvicorn closes one whose request raised.
        response = httpx.get(f"{self.service.url}/metrics", timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }


@contextmanager
def observed(
    db_url: str,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    run_workers: bool = True,
    configure: Callable[[FastAPI], None] | None = None,
) -> Iterator[Observed]:
    log = io.BytesIO()
    server, thread, runtime, url = start_service(
        db_url, tmp_path, env, run_workers, access_log=AccessLog(log), configure=configure
    )
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield Observed(Service(url, runtime, client), log)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()


def _boom(app: FastAPI) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")


@pytest.fixture
def obs(db_url: str, tmp_path: Path) -> Iterator[Observed]:
    with observed(db_url, tmp_path, configure=_boom) as o:
        yield o


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# -- request ids and the request log ------------------------------------------------------


def test_every_response_carries_a_request_id_and_a_clients_own_is_echoed(obs: Observed) -> None:
    s = obs.service
    mine = s.client.post(
        "/pick-pack/demo/events", json=EXAMPLE_EVENT, headers={**auth(), "X-Request-Id": "scan-42"}
    )
    assert mine.headers["x-request-id"] == "scan-42"
    generated = {s.client.get("/health").headers["x-request-id"] for _ in range(3)}
    assert len(generated) == 3 and all(len(g) == 16 for g in generated)
    unusable = s.client.get("/health", headers={"X-Request-Id": "x" * 500})
    assert unusable.headers["x-request-id"] != "x" * 500
    assert s.client.get("/no/such/route").headers["x-request-id"]


def test_each_request_writes_one_json_line_with_tenant_route_status_latency_and_id(
    obs: Observed,
) -> None:
    s = obs.service
    posted = s.post_event(EXAMPLE_EVENT)
    missing = s.client.get("/pick-pack/acme/orders/nope", headers=auth("acme"))
    unmatched = s.client.get("/no/such/route")
    lines = obs.lines(3)
    assert len(lines) == 3, lines
    post, get, none = lines
    assert post["route"] == "/pick-pack/{tenant}/events"
    assert (post["method"], post["tenant"], post["status"]) == ("POST", "demo", 200)
    assert post["request_id"] == posted.headers["x-request-id"]
    assert post["path"] == "/pick-pack/demo/events"
    assert 0 < post["latency_ms"] < 30_000
    assert post["level"] == "info" and post["logger"] == "pickpack.access"
    assert (get["route"], get["tenant"], get["status"]) == (
        "/pick-pack/{tenant}/orders/{orderId}",
        "acme",
        404,
    )
    assert get["request_id"] == missing.headers["x-request-id"]
    assert (none["route"], none["tenant"], none["status"]) == ("unmatched", None, 404)
    assert none["request_id"] == unmatched.headers["x-request-id"]


def test_the_request_log_never_contains_the_token_or_the_saas_token(obs: Observed) -> None:
    bearer = token(sub="user-secret-subject")
    saas = "saas-token-value-7f3a"
    headers = {"Authorization": f"Bearer {bearer}", "saas-token": saas}
    assert (
        obs.service.client.post(
            "/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers
        ).status_code
        == 200
    )
    bad = {"Authorization": "Bearer not-a-jwt-secret-ish", "saas-token": saas}
    assert (
        obs.service.client.post(
            "/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=bad
        ).status_code
        == 401
    )
    assert len(obs.lines(2)) == 2
    written = obs.log.getvalue()
    for secret in (bearer, saas, "not-a-jwt-secret-ish", "Bearer", "user-secret-subject"):
        assert secret.encode() not in written


def test_an_unhandled_error_answers_500_with_a_request_id_and_is_logged_as_500(
    obs: Observed,
) -> None:
    response = obs.service.client.get("/boom")
    assert response.status_code == 500
    assert response.json()["code"] == 500
    [line] = obs.lines(1)
    assert (line["route"], line["status"]) == ("/boom", 500)
    assert line["request_id"] == response.headers["x-request-id"]
    assert (
        obs.metrics()[
            (
                "pickpack_http_requests_total",
                (("method", "GET"), ("route", "/boom"), ("status", "500")),
            )
        ]
        == 1
    )


# -- metrics --------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_not_by_raw_path(obs: Observed) -> None:
    s = obs.service
    assert s.post_event({**EXAMPLE_EVENT, "eventId": "a"}, tenant="demo").status_code == 200
    assert s.post_event({**EXAMPLE_EVENT, "eventId": "b"}, tenant="acme").status_code == 200
    assert s.client.get("/pick-pack/demo/orders/x1", headers=auth()).status_code == 404
    assert s.client.get("/pick-pack/demo/orders/x2", headers=auth()).status_code == 404
    s.client.get("/no/such/route")
    m = obs.metrics()
    events = (("method", "POST"), ("route", "/pick-pack/{tenant}/events"), ("status", "200"))
    order = (
        ("method", "GET"),
        ("route", "/pick-pack/{tenant}/orders/{orderId}"),
        ("status", "404"),
    )
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert m[("pickpack_http_requests_total", events)] == 2
    assert m[("pickpack_http_requests_total", order)] == 2
    assert m[("pickpack_http_requests_total", unmatched)] == 1
    routes = {dict(labels)["route"] for name, labels in m if name == "pickpack_http_requests_total"}
    assert not any("demo" in r or "acme" in r or "x1" in r for r in routes), routes
    # Every POST /events is in the ingest latency histogram, and nothing else is.
    assert m[("pickpack_ingest_duration_seconds_count", ())] == 2
    assert m[("pickpack_ingest_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert 0 < m[("pickpack_ingest_duration_seconds_sum", ())] < 60


def test_events_appended_counts_committed_events_not_retries_or_conflicts(obs: Observed) -> None:
    s = obs.service
    assert s.post_event(EXAMPLE_EVENT).status_code == 200
    assert s.post_event(EXAMPLE_EVENT).status_code == 200  # a retry: nothing new
    assert s.post_event({**EXAMPLE_EVENT, "packedAmount": 9}).status_code == 409
    assert s.post_event({**EXAMPLE_EVENT, "eventId": "124"}).status_code == 200
    registered = s.client.put("/pick-pack/demo/orders/o1", json=ORDER, headers=auth())
    assert registered.status_code == 200, registered.text
    m = obs.metrics()
    assert m[("pickpack_events_appended_total", (("kind", "packing"),))] == 2
    assert m[("pickpack_events_appended_total", (("kind", "order"),))] == 1


def test_projection_lag_is_the_store_head_minus_each_projections_position(
    db_url: str, tmp_path: Path
) -> None:
    # No projection workers: the views stay where they are until we step them.
    with observed(db_url, tmp_path, run_workers=False) as o:
        for i in range(3):
            assert o.service.post_event({**EXAMPLE_EVENT, "eventId": f"e{i}"}).status_code == 200
        m = o.metrics()
        assert m[("pickpack_database_up", ())] == 1
        assert m[("pickpack_event_store_head", ())] == 3
        for name in PROJECTIONS:
            assert m[("pickpack_projection_lag_events", (("projection", name),))] == 3
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert step(conn, PROJECTIONS["line_totals"], batch_size=2) == 2
        m = o.metrics()
        assert m[("pickpack_projection_lag_events", (("projection", "line_totals"),))] == 1
        assert m[("pickpack_projection_lag_events", (("projection", "order_status"),))] == 3


def test_outbox_pending_and_failed_requests_are_counted(db_url: str, tmp_path: Path) -> None:
    fake = FakeOrderService().start()
    env = {
        "PICKPACK_ORDER_SERVICE_URL": fake.url,
        "PICKPACK_RECALC_BACKOFF_SECONDS": "0.05",
        "PICKPACK_RECALC_MAX_BACKOFF_SECONDS": "0.1",
        "PICKPACK_RECALC_POLL_SECONDS": "0.02",
        "PICKPACK_RECALC_MAX_ATTEMPTS": "1000",
    }
    try:
        with observed(db_url, tmp_path, env) as o:
            s = o.service
            fake.fail(times=100_000, status=503, order_id="o1")  # retried: stays PENDING
            fake.reject("o2", "no such order here", status=400)  # a 4xx: FAILURE at once
            for oid in ("o1", "o2", "o3"):
                doc = {**ORDER, "id": oid}
                put = s.client.put(f"/pick-pack/demo/orders/{oid}", json=doc, headers=auth())
                assert put.status_code == 200, put.text
                finished = s.client.post(f"/pick-pack/demo/orders/{oid}/finish", headers=auth())
                assert finished.status_code == 200, finished.text
            wait_until(lambda: len(fake.calculations("o1")) >= 2 and bool(fake.calculations("o3")))
            wait_until(lambda: bool(fake.calculations("o2")))

            def counted() -> bool:
                m = o.metrics()
                return (
                    m[("pickpack_outbox_requests", (("status", "pending"),))] == 1
                    and m[("pickpack_outbox_requests", (("status", "failed"),))] == 1
                )

            wait_until(counted)
    finally:
        fake.stop()


def test_pool_in_use_follows_the_connections_checked_out(db_url: str, tmp_path: Path) -> None:
    with observed(db_url, tmp_path, run_workers=False) as o:
        before = o.metrics()[("pickpack_db_pool_in_use", ())]
        with (
            o.service.runtime.store.datastore.get_connection(),
            o.service.runtime.store.datastore.get_connection(),
        ):
            m = o.metrics()
            assert m[("pickpack_db_pool_in_use", ())] == before + 2
            assert m[("pickpack_db_pool_max", ())] >= m[("pickpack_db_pool_size", ())] >= 2
        assert o.metrics()[("pickpack_db_pool_in_use", ())] == before
