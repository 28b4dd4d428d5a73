"""An AUTOMATIC recalculation job takes every order whose packed totals changed since its
last successful recalculation, whatever changed them: scans or corrections alone
(docs/explanation/recalculation.md)."""

from __future__ import annotations

from typing import Any

from devtools.fake_order_service import FakeOrderService
from devtools.harness.service import Service, auth
from tests.services.test_recalculation import (
    body,
    outbox_rows,
    register,
    start_job,
    wait_for,
    wait_job,
)


def correct(svc: Service, order_id: str, correction_id: str, **amounts: Any) -> None:
    resp = svc.client.post(
        f"/pick-pack/demo/orders/{order_id}/corrections",
        json={
            "correctionId": correction_id,
            "productId": "p1",
            "unit": "H87",
            "reason": "packed without a scan",
            **amounts,
        },
        headers=auth(),
    )
    assert resp.status_code == 200, resp.text


def automatic(svc: Service) -> dict[str, Any]:
    return wait_job(svc, start_job(svc, {"jobType": "AUTOMATIC"}).json()["jobId"])


def test_an_order_packed_only_by_corrections_is_recalculated(
    svc: Service, fake: FakeOrderService
) -> None:
    register(svc, "o1")  # no scan at all
    correct(svc, "o1", "c1", packedAmount=1)
    job = automatic(svc)
    assert [o["orderId"] for o in job["orders"]] == ["o1"], job
    assert job["jobStatus"] == "SUCCESS"
    sent = wait_for(lambda: fake.calculations("o1"))
    assert sent[-1].body == body(("e1", 1, 1, "H87"), ("e2", 0, 0, "GRM"))
    # Delivered: nothing changed since, nothing queued.
    assert automatic(svc)["orders"] == []
    # A later correction alone changes the totals again.
    correct(svc, "o1", "c2", packedAmount=1)
    job = automatic(svc)
    assert [o["orderId"] for o in job["orders"]] == ["o1"], job
    wait_for(lambda: all(r[2] == "SUCCESS" for r in outbox_rows(svc.runtime.database.url)))
    assert fake.calculations("o1")[-1].body == body(("e1", 2, 2, "H87"), ("e2", 0, 0, "GRM"))
