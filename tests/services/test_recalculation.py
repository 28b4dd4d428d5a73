"""Recalculation: finish and jobs deliver exact packed totals to a real (fake) Order Service."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from devtools.fake_order_service import FakeOrderService, validate_calculation
from devtools.harness.service import EXAMPLE_EVENT, Service, auth, free_port, running
from devtools.harness.support import FAST_RECALCULATION, wait_for
from ledger.adapters.order_service import OrderServiceClient
from ledger.domain import orders
from ledger.domain.recalculation import Answer, Next, RetryPolicy, job_status, needs_recalculation
from ledger.services.outbox_dispatcher import OutboxDispatcher
from tests.helpers.pack_station import finish

FAST = FAST_RECALCULATION

ORDER = {
    "id": "o1",
    "siteCode": "main",
    "entries": [
        {"entryId": "e1", "productId": "p1", "totalCount": 2, "orderUnit": "H87"},
        {
            "entryId": "e2",
            "productId": "p2",
            "totalCount": 1000,
            "orderUnit": "GRM",
            "unitPricingMeasure": {"value": 500, "unitCode": "GRM"},
        },
    ],
}


def register(service: Service, order_id: str, doc: dict[str, Any] = ORDER) -> None:
    document = {**doc, "id": order_id}
    service.runtime.store.run_order_command(
        "demo", order_id, lambda c: orders.register(c.state, document)
    )


def pack(
    service: Service, event_id: str, order_id: str, product: str, amount: int, unit: str = "H87"
) -> None:
    r = service.post_event(
        {
            **EXAMPLE_EVENT,
            "eventId": event_id,
            "orderNumber": order_id,
            "productId": product,
            "packedAmount": amount,
            "pickedAmount": amount,
            "unit": unit,
        }
    )
    assert r.status_code == 200, r.text


def start_job(service: Service, body: dict[str, Any]) -> httpx.Response:
    return service.client.post("/pick-pack/demo/jobs/recalculations", json=body, headers=auth())


def job(service: Service, job_id: str) -> dict[str, Any]:
    r = service.client.get(f"/pick-pack/demo/jobs/recalculations/{job_id}", headers=auth())
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_job(service: Service, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        j = job(service, job_id)
        return j if j["jobStatus"] != "IN_PROGRESS" else None

    return wait_for(done)  # type: ignore[no-any-return]


def outbox_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT order_id, job_id, status, attempts, body, last_message "
            "FROM recalculation_outbox ORDER BY seq"
        ).fetchall()


def all_done(url: str) -> list[tuple[Any, ...]] | None:
    rows = outbox_rows(url)
    return rows if all(r[2] == "SUCCESS" for r in rows) else None


def body(*entries: tuple[str, int, int | None, str | None]) -> dict[str, Any]:
    return {
        "entries": [
            {"entryId": e, "deliveredAmount": a, "deliveredAmountInPc": pc, "unit": u}
            for e, a, pc, u in entries
        ]
    }


# -- finish -------------------------------------------------------------------------------


def test_finish_sends_the_exact_packed_totals(svc: Service, fake: FakeOrderService) -> None:
    register(svc, "o1")
    pack(svc, "a", "o1", "p1", 1)
    pack(svc, "b", "o1", "p1", 1)
    pack(svc, "c", "o1", "p2", 500, unit="GRM")
    r = finish(svc, "o1")
    assert (r.status_code, r.json()) == (200, {"message": "Success", "code": 200})
    sent = wait_for(lambda: fake.calculations("o1"))
    assert len(sent) == 1
    assert sent[0].path == "/demo/salesorders/o1/calculations"
    assert sent[0].headers.get("Authorization") == "Bearer os-token"
    assert sent[0].body == body(("e1", 2, 2, "H87"), ("e2", 500, 1, "GRM"))
    wait_for(lambda: outbox_rows(svc.runtime.database.url)[0][2] == "SUCCESS")
    assert len(fake.calculations()) == 1


def test_finish_unknown_order_404_and_cancelled_409(svc: Service) -> None:
    r = finish(svc, "nope")
    assert r.status_code == 404 and r.json()["code"] == 404
    register(svc, "o1")
    svc.runtime.store.run_order_command(
        "demo", "o1", lambda c: orders.change_status(c.state, "CANCELLED", "u")
    )
    r = finish(svc, "o1")
    assert r.status_code == 409 and "CANCELLED" in r.json()["detailInfo"]
    assert outbox_rows(svc.runtime.database.url) == []


def test_finish_needs_manage_scope_and_saas_token(svc: Service) -> None:
    register(svc, "o1")
    r = svc.client.post(
        "/pick-pack/demo/orders/o1/finish", headers=auth(scopes=["pickpack.pickpack_view"])
    )
    assert r.status_code == 403
    headers = auth()
    del headers["saas-token"]
    assert svc.client.post("/pick-pack/demo/orders/o1/finish", headers=headers).status_code == 400


def test_without_order_service_url_requests_wait_pending(service: Service) -> None:
    register(service, "o1")
    pack(service, "a", "o1", "p1", 2)
    assert finish(service, "o1").status_code == 200
    job_id = start_job(service, {"jobType": "MANUAL", "orderIds": ["o1"]}).json()["jobId"]
    time.sleep(0.3)
    j = job(service, job_id)
    # finishedAt is left out (not null) while in progress: the spec's date-time is not nullable
    assert j["jobStatus"] == "IN_PROGRESS" and "finishedAt" not in j
    assert j["orders"][0]["jobOrderStatus"] == "PENDING"
    statuses = [r[2] for r in outbox_rows(service.runtime.database.url)]
    assert statuses == ["PENDING", "PENDING"]


# -- jobs and retries ---------------------------------------------------------------------


def test_500_three_times_then_success(svc: Service, fake: FakeOrderService) -> None:
    register(svc, "o1")
    pack(svc, "a", "o1", "p1", 2)
    fake.fail(3, status=500)
    r = start_job(svc, {"jobType": "MANUAL", "orderIds": ["o1", "o1"]})
    assert r.status_code == 200
    job_id = r.json()["jobId"]
    assert 3 <= len(job_id) <= 16
    j = wait_job(svc, job_id)
    assert j["jobStatus"] == "SUCCESS" and j["jobType"] == "MANUAL"
    assert j["orders"] == [
        {"orderId": "o1", "jobOrderStatus": "SUCCESS", "message": "Order recalculated successfully"}
    ]
    assert j["startedAt"] <= j["finishedAt"]
    sent = fake.calculations("o1")
    assert len(sent) == 4
    assert all(s.body == body(("e1", 2, 2, "H87"), ("e2", 0, 0, "GRM")) for s in sent)
    assert outbox_rows(svc.runtime.database.url)[0][3] == 4


def test_a_400_fails_its_order_and_the_others_succeed(svc: Service, fake: FakeOrderService) -> None:
    for oid in ("o1", "o2", "o3"):
        register(svc, oid)
        pack(svc, f"ev-{oid}", oid, "p1", 1)
    fake.reject("o2", "Entry e1 is already delivered")
    job_id = start_job(svc, {"jobType": "MANUAL", "orderIds": ["o1", "o2", "o3"]}).json()["jobId"]
    j = wait_job(svc, job_id)
    assert j["jobStatus"] == "FAILURE"
    by_order = {o["orderId"]: o for o in j["orders"]}
    assert by_order["o1"]["jobOrderStatus"] == by_order["o3"]["jobOrderStatus"] == "SUCCESS"
    assert by_order["o2"]["jobOrderStatus"] == "FAILURE"
    assert "Entry e1 is already delivered" in by_order["o2"]["message"]
    assert len(fake.calculations("o2")) == 1  # a 4xx is not retried


def test_retries_are_bounded(db_url: str, tmp_path: Path, fake: FakeOrderService) -> None:
    env = {**FAST, "PICKPACK_ORDER_SERVICE_URL": fake.url, "PICKPACK_RECALC_MAX_ATTEMPTS": "3"}
    with running(db_url, tmp_path, env) as s:
        register(s, "o1")
        pack(s, "a", "o1", "p1", 1)
        fake.fail(10, status=503)
        j = wait_job(s, start_job(s, {"jobType": "MANUAL", "orderIds": ["o1"]}).json()["jobId"])
        assert j["orders"][0]["jobOrderStatus"] == "FAILURE"
        assert "503" in j["orders"][0]["message"]
        assert len(fake.calculations()) == 3


def test_a_hanging_order_service_times_out_and_is_retried(
    db_url: str, tmp_path: Path, fake: FakeOrderService
) -> None:
    env = {
        **FAST,
        "PICKPACK_ORDER_SERVICE_URL": fake.url,
        "PICKPACK_ORDER_SERVICE_TIMEOUT_SECONDS": "0.3",
    }
    with running(db_url, tmp_path, env) as s:
        register(s, "o1")
        pack(s, "a", "o1", "p1", 1)
        fake.hang(1, seconds=1.0)
        j = wait_job(s, start_job(s, {"jobType": "MANUAL", "orderIds": ["o1"]}).json()["jobId"])
        assert j["jobStatus"] == "SUCCESS"
        assert len(fake.calculations()) == 2


def test_order_service_down_across_a_restart(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **FAST,
        "PICKPACK_ORDER_SERVICE_URL": f"http://127.0.0.1:{port}",
        "PICKPACK_RECALC_MAX_ATTEMPTS": "1000",
    }
    with running(db_url, tmp_path, env) as s:
        register(s, "o1")
        pack(s, "a", "o1", "p1", 1)
        assert finish(s, "o1").status_code == 200
        wait_for(lambda: outbox_rows(db_url)[0][3] >= 2)  # refused, and retried
        pack(s, "b", "o1", "p1", 1)  # more packed after finish, then a job
        job_id = start_job(s, {"jobType": "MANUAL", "orderIds": ["o1"]}).json()["jobId"]
        assert [r[2] for r in outbox_rows(db_url)] == ["PENDING", "PENDING"]
    fake = FakeOrderService(port=port).start()
    try:
        with running(db_url, tmp_path, env) as s:
            j = wait_job(s, job_id)
            assert j["jobStatus"] == "SUCCESS"
            rows = wait_for(lambda: all_done(db_url))
            sent = [r.body for r in fake.calculations("o1")]
            # each request once, in order: the newest totals arrive last
            assert sent == [
                body(("e1", 1, 1, "H87"), ("e2", 0, 0, "GRM")),
                body(("e1", 2, 2, "H87"), ("e2", 0, 0, "GRM")),
            ]
            assert [r[4] for r in rows] == sent
    finally:
        fake.stop()


def test_automatic_picks_orders_whose_totals_changed(svc: Service, fake: FakeOrderService) -> None:
    register(svc, "o1")
    pack(svc, "a", "o1", "p1", 2)
    assert finish(svc, "o1").status_code == 200
    wait_for(lambda: outbox_rows(svc.runtime.database.url)[0][2] == "SUCCESS")
    pack(svc, "b", "u9", "px", 3)  # an order the ledger does not know (yet)
    pack(svc, "c", "o3", "p1", 0)  # nothing packed: nothing to recalculate
    j = wait_job(svc, start_job(svc, {"jobType": "AUTOMATIC"}).json()["jobId"])
    assert j["jobType"] == "AUTOMATIC" and j["jobStatus"] == "SUCCESS"
    assert [o["orderId"] for o in j["orders"]] == ["u9"]
    assert fake.calculations("u9")[0].body == body(("px", 3, 3, "H87"))
    pack(svc, "d", "o1", "p1", 1)
    j = wait_job(svc, start_job(svc, {"jobType": "AUTOMATIC"}).json()["jobId"])
    assert [o["orderId"] for o in j["orders"]] == ["o1"]
    assert fake.calculations("o1")[-1].body == body(("e1", 3, 3, "H87"), ("e2", 0, 0, "GRM"))
    j = wait_job(svc, start_job(svc, {"jobType": "AUTOMATIC"}).json()["jobId"])
    assert j["orders"] == [] and j["jobStatus"] == "SUCCESS" and j["finishedAt"]


def test_manual_job_unknown_and_cancelled_orders_fail(svc: Service) -> None:
    register(svc, "o1")
    svc.runtime.store.run_order_command(
        "demo", "o1", lambda c: orders.change_status(c.state, "CANCELLED", "u")
    )
    j = wait_job(
        svc, start_job(svc, {"jobType": "MANUAL", "orderIds": ["o1", "zz"]}).json()["jobId"]
    )
    assert j["jobStatus"] == "FAILURE"
    assert [(o["orderId"], o["jobOrderStatus"]) for o in j["orders"]] == [
        ("o1", "FAILURE"),
        ("zz", "FAILURE"),
    ]


def test_job_validation_and_lookup(svc: Service) -> None:
    assert start_job(svc, {"jobType": "SOMETIMES"}).status_code == 400
    assert start_job(svc, {"jobType": "MANUAL"}).status_code == 400
    assert start_job(svc, {"orderIds": ["o1"]}).status_code == 400
    r = svc.client.get("/pick-pack/demo/jobs/recalculations/unknownjob", headers=auth())
    assert r.status_code == 404 and r.json()["code"] == 404
    r = svc.client.get("/pick-pack/demo/jobs/recalculations/a!", headers=auth())
    assert r.status_code == 400
    job_id = start_job(svc, {"jobType": "AUTOMATIC"}).json()["jobId"]
    r = svc.client.get(f"/pick-pack/other/jobs/recalculations/{job_id}", headers=auth("other"))
    assert r.status_code == 404


# -- the pure policy and the fake ---------------------------------------------------------


def test_retry_policy() -> None:
    p = RetryPolicy(base_seconds=1, factor=2, max_delay_seconds=10, max_attempts=3, jitter=0.5)
    assert p.judge(1, Answer(200, "")) is Next.DONE
    assert p.judge(1, Answer(400, "")) is Next.GIVE_UP
    assert p.judge(1, Answer(404, "")) is Next.GIVE_UP
    assert p.judge(1, Answer(429, "")) is Next.RETRY
    assert p.judge(2, Answer(500, "")) is Next.RETRY
    assert p.judge(2, Answer(None, "timeout")) is Next.RETRY
    assert p.judge(3, Answer(500, "")) is Next.GIVE_UP
    assert [p.delay(n, 0.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]
    assert p.delay(3, 0.999) == pytest.approx(4 * 0.5005)


def test_job_status_and_change_detection() -> None:
    assert job_status([]) == "SUCCESS"
    assert job_status(["SUCCESS", "PENDING", "FAILURE"]) == "IN_PROGRESS"
    assert job_status(["SUCCESS", "FAILURE"]) == "FAILURE"
    e = [{"entryId": "e1", "deliveredAmount": 2}]
    assert needs_recalculation(e, None)
    assert not needs_recalculation([{"entryId": "e1", "deliveredAmount": 0}], None)
    assert not needs_recalculation(e, list(e))
    assert needs_recalculation(e, [{"entryId": "e1", "deliveredAmount": 1}])


def test_fake_validates_and_serves_orders(fake: FakeOrderService) -> None:
    assert validate_calculation({"entries": [{"deliveredAmount": 1}]})
    assert validate_calculation({"entries": [{"entryId": "e", "deliveredAmount": -1}]})
    assert validate_calculation({"entries": [{"entryId": "e", "deliveredAmount": 1.5}]})
    assert validate_calculation({"entries": [{"entryId": "e", "deliveredAmount": 1}]}) is None
    with httpx.Client(base_url=fake.url) as c:
        calc = "/order-v2/demo/salesorders/o1/calculations"
        assert c.post(calc, json={"entries": [{"deliveredAmount": 1}]}).status_code == 400
        assert c.post("/_control/orders/demo/o1", json={"id": "o1"}).status_code == 200
        assert c.get("/demo/salesorders/o1").json() == {"id": "o1"}
        assert c.post("/demo/salesorders/o2/calculations", json={"entries": []}).status_code == 404
        assert c.post("/_control/fail", json={"times": 1}).status_code == 200
        assert c.post(calc, json={"entries": []}).status_code == 500
        assert c.post(calc, json={"entries": []}).status_code == 200
        assert len(c.get("/_control/requests").json()) == 5


def test_many_dispatchers_send_each_request_once_and_in_order(
    service: Service, fake: FakeOrderService
) -> None:
    """Four dispatchers (as four processes would) share one outbox through SKIP LOCKED."""
    for i in range(12):
        pack(service, f"a{i}", f"o{i}", "p1", 1)
    first = start_job(
        service, {"jobType": "MANUAL", "orderIds": [f"o{i}" for i in range(12)]}
    ).json()["jobId"]
    for i in range(12):
        pack(service, f"b{i}", f"o{i}", "p1", 1)
    second = start_job(service, {"jobType": "AUTOMATIC"}).json()["jobId"]
    policy = RetryPolicy(base_seconds=0.02, max_delay_seconds=0.1, max_attempts=5)
    workers = [
        OutboxDispatcher(
            service.runtime.database.url, OrderServiceClient(fake.url), policy, poll_seconds=0.02
        ).start()
        for _ in range(4)
    ]
    try:
        assert wait_job(service, first)["jobStatus"] == "SUCCESS"
        assert wait_job(service, second)["jobStatus"] == "SUCCESS"
    finally:
        for w in workers:
            w.stop()
    for i in range(12):
        sent = [r.body["entries"][0]["deliveredAmount"] for r in fake.calculations(f"o{i}")]
        assert sent == [1, 2]


def test_a_job_over_many_orders_queues_them_in_short_transactions(
    svc: Service, fake: FakeOrderService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.services import recalculation

    monkeypatch.setattr(recalculation, "JOB_CHUNK", 4)  # 10 orders: three locked transactions
    order_ids = [f"m{i}" for i in range(10)]
    for oid in order_ids:
        register(svc, oid)
        pack(svc, f"ev-{oid}", oid, "p1", 1)
    locks: list[int] = []
    real_lock = svc.runtime.store.recorder.lock_table

    def counting_lock(curs: Any) -> None:
        locks.append(1)
        real_lock(curs)

    monkeypatch.setattr(svc.runtime.store.recorder, "lock_table", counting_lock)
    job_id = start_job(svc, {"jobType": "MANUAL", "orderIds": order_ids}).json()["jobId"]
    j = wait_job(svc, job_id)
    assert len(locks) == 3
    assert j["jobStatus"] == "SUCCESS" and j["finishedAt"] is not None
    assert sorted(o["orderId"] for o in j["orders"]) == sorted(order_ids)
    assert all(len(fake.calculations(oid)) == 1 for oid in order_ids)
