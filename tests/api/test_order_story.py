"""An order's history, the order as of an instant, and audited corrections (real HTTP)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.auth import VIEW
from devtools.harness.service import Service, auth
from devtools.harness.support import wait_until
from tests.helpers.pack_station import ASSIGNEE_A, Api, order


def history(service: Service, order_id: str, **params: Any) -> httpx.Response:
    return service.client.get(
        f"/pick-pack/demo/orders/{order_id}/history", params=params, headers=auth()
    )


def whole_history(service: Service, order_id: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        resp = history(service, order_id, after=after, limit=limit)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert page["orderId"] == order_id
        items += page["items"]
        if page["next"] is None:
            return items
        assert page["next"] == page["items"][-1]["position"]
        after = page["next"]


def correct(service: Service, order_id: str, **body: Any) -> httpx.Response:
    return service.client.post(
        f"/pick-pack/demo/orders/{order_id}/corrections",
        json={"correctionId": "c1", "productId": "p1", "unit": "H87", "reason": "r", **body},
        headers=auth(),
    )


def as_of(service: Service, order_id: str, at: str) -> httpx.Response:
    return service.client.get(
        f"/pick-pack/demo/orders/{order_id}", params={"asOf": at}, headers=auth()
    )


def now() -> str:
    time.sleep(0.01)  # clearly after what was recorded before, before what follows
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.01)
    return moment


def packed(body: dict[str, Any], product: str = "p1") -> int:
    return next(int(e["packedCount"]) for e in body["entries"] if e["productId"] == product)


@pytest.fixture
def api(service: Service) -> Api:
    return Api(service)


def test_history_shows_every_fact_type_in_commit_order_with_paging(
    service: Service, api: Api
) -> None:
    assert history(service, "o1").status_code == 404  # no fact of it yet
    api.register("o1", order("o1"))
    assert api.event("e1", "o1", "p1", packedAmount=3).status_code == 200
    assert api.patch("o1", "IN_PROGRESS").status_code == 200
    assert api.assign("o1", ASSIGNEE_A).status_code == 200
    assert api.unassign("o1", "a-1").status_code == 204
    assert api.packaging("o1", [{"entryId": "box", "packedCount": 1}]).status_code == 200
    assert correct(service, "o1", packedAmount=-1, reason="scanned twice").status_code == 200
    finish = service.client.post("/pick-pack/demo/orders/o1/finish", headers=auth())
    assert finish.status_code == 200, finish.text
    assert api.patch("o1", "CANCELLED").status_code == 200

    items = whole_history(service, "o1", limit=3)
    assert [i["type"] for i in items] == [
        "OrderRegistered",
        "PackingEventRecorded",
        "PackingStatusChanged",
        "AssigneeAdded",
        "AssigneeRemoved",
        "PackagingChanged",
        "CorrectionRecorded",
        "OrderFinished",
        "HoldingAreaAssigned",
        "OrderCancelled",
    ]
    positions = [i["position"] for i in items]
    assert positions == sorted(set(positions))
    scan = items[1]
    assert scan["user"] == "user-1"
    assert scan["data"]["eventId"] == "e1" and scan["data"]["packedAmount"] == 3
    assert scan["data"]["site"] == "main" and scan["data"]["timestamp"]
    fix = items[6]["data"]
    assert fix == {
        "correctionId": "c1",
        "productId": "p1",
        "pickedAmount": 0,
        "packedAmount": -1,
        "canceledAmount": 0,
        "unit": "H87",
        "reason": "scanned twice",
    }
    finished = items[7]["data"]
    # The calculations request carries the corrected total, and its delivery shows.
    assert [e["deliveredAmount"] for e in finished["entries"]] == [2]
    delivery = finished["delivery"]
    assert delivery["status"] == "PENDING" and delivery["attempts"] == 0
    assert delivery["recalculationId"] == finished["recalculationId"]
    assert "saas" not in str(items).lower()
    # One page holds it all; `next` is null on the last page.
    page = history(service, "o1", limit=1000).json()
    assert page["items"] == items and page["next"] is None
    assert history(service, "o1", limit=0).status_code == 400


def test_as_of_between_two_scans(service: Service, api: Api) -> None:
    before = now()
    api.register("o1", order("o1"))  # p1: totalCount 2
    registered = now()
    assert api.event("e1", "o1", "p1", packedAmount=1).status_code == 200
    between = now()
    assert api.event("e2", "o1", "p1", packedAmount=1).status_code == 200
    assert api.assign("o1", ASSIGNEE_A).status_code == 200

    assert as_of(service, "o1", before).status_code == 404  # not registered yet
    then = as_of(service, "o1", registered).json()
    assert then["packingStatus"] == "INITIAL" and packed(then) == 0
    mid = as_of(service, "o1", between).json()
    assert mid["packingStatus"] == "IN_PROGRESS" and packed(mid) == 1
    assert "assignees" not in mid
    # As of now, it is exactly what GET order answers (the projections' folds).
    current = api.get("o1").json()
    assert as_of(service, "o1", now()).json() == current
    assert packed(current) == 2 and current["packingStatus"] == "PRE_PACKED"
    assert current["assignees"][0]["id"] == "a-1"
    assert as_of(service, "o1", "yesterday").status_code == 400
    assert as_of(service, "o1", "2024-05-01T10:00:00").status_code == 400  # no time zone


def test_corrections_change_counts_status_and_calculations(service: Service, api: Api) -> None:
    api.register("o1", order("o1"))  # p1: totalCount 2
    assert api.event("e1", "o1", "p1", pickedAmount=3, packedAmount=3).status_code == 200
    assert api.get("o1").json()["packingStatus"] == "PRE_PACKED"

    resp = correct(service, "o1", correctionId="c1", pickedAmount=-1, packedAmount=-2)
    assert resp.status_code == 200, resp.text
    body = api.get("o1").json()
    assert packed(body) == 1 and body["packingStatus"] == "IN_PROGRESS"
    assert body["entries"][0]["pickedCount"] == 2

    # Replay: same content, 200, recorded once. Other content: 409 naming the field.
    assert (
        correct(service, "o1", correctionId="c1", pickedAmount=-1, packedAmount=-2).status_code
        == 200
    )
    conflict = correct(service, "o1", correctionId="c1", packedAmount=-1)
    assert conflict.status_code == 409 and "correctionId" in conflict.json()["detailInfo"]
    # Below zero: 409 naming the field; nothing recorded.
    below = correct(service, "o1", correctionId="c2", packedAmount=-2)
    assert below.status_code == 409 and "packedAmount" in below.json()["detailInfo"]
    below = correct(service, "o1", correctionId="c2", canceledAmount=-1)
    assert below.status_code == 409 and "canceledAmount" in below.json()["detailInfo"]
    # A correction of another unit has its own totals (nothing in KGM yet).
    assert correct(service, "o1", correctionId="c2", unit="KGM", packedAmount=-1).status_code == 409
    # Validation: all zero, an empty or too long reason, a non-integer delta.
    assert correct(service, "o1", correctionId="c3").status_code == 400
    assert correct(service, "o1", correctionId="c3", packedAmount=1, reason="").status_code == 400
    assert (
        correct(service, "o1", correctionId="c3", packedAmount=1, reason="x" * 501).status_code
        == 400
    )
    assert correct(service, "o1", correctionId="c3", packedAmount=1.5).status_code == 400
    no_token = service.client.post(
        "/pick-pack/demo/orders/o1/corrections",
        json={
            "correctionId": "c3",
            "productId": "p1",
            "unit": "H87",
            "reason": "r",
            "packedAmount": 1,
        },
        headers={"Authorization": auth()["Authorization"]},
    )
    assert no_token.status_code == 400  # the saas-token is required, as for events
    view_only = service.client.post(
        "/pick-pack/demo/orders/o1/corrections",
        json={
            "correctionId": "c3",
            "productId": "p1",
            "unit": "H87",
            "reason": "r",
            "packedAmount": 1,
        },
        headers=auth(scopes=[VIEW]),
    )
    assert view_only.status_code == 403

    assert correct(service, "o1", correctionId="c4", packedAmount=1).status_code == 200
    assert packed(api.get("o1").json()) == 2
    # Corrections stay out of GET /events (its amounts are non-negative scans).
    assert [e["eventId"] for e in service.events().json()] == ["e1"]
    types = [i["type"] for i in whole_history(service, "o1", limit=100)]
    assert types.count("CorrectionRecorded") == 2

    # The next calculations send the corrected totals.
    finish = service.client.post("/pick-pack/demo/orders/o1/finish", headers=auth())
    assert finish.status_code == 200
    finished = [i for i in whole_history(service, "o1", 100) if i["type"] == "OrderFinished"]
    assert finished[0]["data"]["entries"][0]["deliveredAmount"] == 2

    # A CANCELLED order takes no correction.
    assert api.patch("o1", "CANCELLED").status_code == 200
    closed = correct(service, "o1", correctionId="c5", packedAmount=-1)
    assert closed.status_code == 409 and "CANCELLED" in closed.json()["detailInfo"]


def test_the_below_zero_check_is_race_free(service: Service, api: Api) -> None:
    assert api.event("e1", "o1", "p1", packedAmount=3).status_code == 200
    codes: list[int] = []

    def take_one(n: int) -> None:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            resp = client.post(
                "/pick-pack/demo/orders/o1/corrections",
                json={
                    "correctionId": f"c{n}",
                    "productId": "p1",
                    "unit": "H87",
                    "reason": "r",
                    "packedAmount": -1,
                },
                headers=auth(),
            )
            codes.append(resp.status_code)

    threads = [threading.Thread(target=take_one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 3 + [409] * 5
    store = service.runtime.store.datastore

    def view_reaches_zero() -> bool:  # the view trails the store a little
        with store.get_connection() as conn:
            row = conn.execute(
                "SELECT packed FROM line_totals WHERE tenant = 'demo' AND order_id = 'o1'"
            ).fetchone()
        return row is not None and row["packed"] == 0

    wait_until(view_reaches_zero)
