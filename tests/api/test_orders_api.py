"""Orders, assignees and order cycles over HTTP against real PostgreSQL.

Every response body of these operations is validated against the Emporix spec's schemas
(OpenAPI 3.0; our bodies leave unknown figures out rather than null, so no nullable
rewriting is needed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from devtools.harness.service import EXAMPLE_EVENT, Service, auth
from devtools.harness.support import SPEC_PATH

TODAY = datetime.now(UTC).date()
DAY = (TODAY + timedelta(days=3)).isoformat()
NEXT_DAY = (TODAY + timedelta(days=4)).isoformat()
PAST_DAY = (TODAY - timedelta(days=3)).isoformat()


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())  # type: ignore[no-any-return]


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def check(resp: httpx.Response, path: str, method: str, status: int | None = None) -> Any:
    """Assert the status (if given) and validate the body against the spec's schema."""
    if status is not None:
        assert resp.status_code == status, resp.text
    if path == "register":  # our extension answers the spec's successResponse
        response = spec()["components"]["responses"]["successResponse"]
    else:
        responses = spec()["paths"][path][method]["responses"]
        if resp.status_code == 409 and "409" not in responses:
            # semantics.md, "Cancelled orders are closed": every write to a CANCELLED order is a
            # 409, also where
            # the spec lists none; the body is the spec's Conflict_409.
            responses = {"409": {"$ref": "#/components/responses/Conflict_409"}}
        response = _deref(responses[str(resp.status_code)])
    if resp.status_code == 204:
        assert resp.content == b""
        return None
    schema = response["content"]["application/json"].get("schema")
    if schema is None:  # the spec's 400 declares no schema: it is our errorMessage
        schema = {"$ref": "#/components/schemas/errorMessage"}
    body = resp.json()
    jsonschema.validate(body, {**schema, "components": spec()["components"]})
    return body


ORDER_PATH = "/pick-pack/{tenant}/orders/{orderId}"
LIST_PATH = "/pick-pack/{tenant}/orders"
ASSIGNEES = "/pick-pack/{tenant}/orders/{orderId}/assignees"
ASSIGNEE = "/pick-pack/{tenant}/orders/{orderId}/assignees/{assigneeId}"
PACKAGING = "/pick-pack/{tenant}/orders/{orderId}/packaging"
CYCLES = "/pick-pack/{tenant}/orderCycles"


def order(
    order_id: str,
    ends: str,
    day: str = DAY,
    site: str = "main",
    entries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": order_id,
        "siteCode": site,
        "currency": "EUR",
        "customer": {"id": "c1", "firstName": "Ada", "lastName": "Lovelace"},
        "delivery": {
            "deliveryTimeModel": {"deliveryDate": day},
            "deliveryWindow": {"deliveryCycle": f"{day}-x", "deliveryTimeTo": f"{day}T{ends}Z"},
        },
        "entries": entries
        if entries is not None
        else [
            {
                "entryId": "e1",
                "productId": "p1",
                "productName": "Apples",
                "totalCount": 2,
                "orderUnit": "H87",
            },
        ],
    }


O1_ENTRIES = [
    {
        "entryId": "e1",
        "productId": "p1",
        "productName": "Apples",
        "totalCount": 2,
        "orderUnit": "H87",
    },
    {
        "entryId": "e2",
        "productId": "p2",
        "productName": "Cheese",
        "totalCount": 1,
        "orderUnit": "GRM",
        "weightDependent": True,
        "unitPricingMeasure": {"unitCode": "GRM", "value": "500"},
    },
]
ASSIGNEE_A = {"id": "a-1", "siteCode": "main", "firstName": "John", "lastName": "Smith"}
ASSIGNEE_B = {"id": "b-2", "siteCode": "main", "firstName": "Jane", "lastName": "Doe"}


class Api:
    """Thin HTTP helpers so the tests read as the scenario they check."""

    def __init__(self, service: Service, tenant: str = "demo") -> None:
        self.c = service.client
        self.s = service
        self.t = tenant

    def put(self, order_id: str, doc: dict[str, Any]) -> httpx.Response:
        return self.c.put(f"/pick-pack/{self.t}/orders/{order_id}", json=doc, headers=auth(self.t))

    def get(self, order_id: str) -> httpx.Response:
        return self.c.get(f"/pick-pack/{self.t}/orders/{order_id}", headers=auth(self.t))

    def patch(self, order_id: str, status: Any) -> httpx.Response:
        return self.c.patch(
            f"/pick-pack/{self.t}/orders/{order_id}",
            json={"packingStatus": status},
            headers=auth(self.t),
        )

    def packlist(self, site: str = "main", day: str = DAY) -> httpx.Response:
        return self.c.get(
            f"/pick-pack/{self.t}/orders",
            params={"siteCode": site, "deliveryDate": day},
            headers=auth(self.t),
        )

    def assign(
        self, order_id: str, who: dict[str, Any], force: bool | None = None
    ) -> httpx.Response:
        params = {} if force is None else {"force": str(force).lower()}
        return self.c.post(
            f"/pick-pack/{self.t}/orders/{order_id}/assignees",
            json=who,
            params=params,
            headers=auth(self.t),
        )

    def unassign(self, order_id: str, assignee_id: str) -> httpx.Response:
        return self.c.delete(
            f"/pick-pack/{self.t}/orders/{order_id}/assignees/{assignee_id}", headers=auth(self.t)
        )

    def packaging(self, order_id: str, body: Any) -> httpx.Response:
        return self.c.put(
            f"/pick-pack/{self.t}/orders/{order_id}/packaging", json=body, headers=auth(self.t)
        )

    def cycles(self, site: str = "main") -> httpx.Response:
        return self.c.get(
            f"/pick-pack/{self.t}/orderCycles", params={"siteCode": site}, headers=auth(self.t)
        )

    def event(self, event_id: str, order_id: str, product: str, **kw: Any) -> httpx.Response:
        return self.s.post_event(
            {
                **EXAMPLE_EVENT,
                "eventId": event_id,
                "orderNumber": order_id,
                "productId": product,
                "pickedAmount": 0,
                "packedAmount": 0,
                "canceledAmount": 0,
                **kw,
            }
        )

    def register(self, order_id: str, doc: dict[str, Any]) -> None:
        check(self.put(order_id, doc), "register", "put", 200)


@pytest.fixture
def api(service: Service) -> Api:
    return Api(service)


def entry(body: dict[str, Any], entry_id: str) -> dict[str, Any]:
    return next(e for e in body["entries"] if e["entryId"] == entry_id)


def test_end_to_end_packing_of_three_orders(api: Api) -> None:
    api.register("o1", order("o1", "12:00:00", entries=O1_ENTRIES))
    api.register("o2", order("o2", "10:00:00"))
    api.register("o3", order("o3", "11:00:00"))

    o1 = check(api.get("o1"), ORDER_PATH, "get", 200)
    assert o1["packingStatus"] == "INITIAL"
    assert o1["id"] == "o1" and "assignees" not in o1 and "holdingAreaNumber" not in o1
    assert entry(o1, "e1")["pickedCount"] == entry(o1, "e1")["packedCount"] == 0

    assert api.event("ev1", "o1", "p1", pickedAmount=2, packedAmount=1).status_code == 200
    assert api.event("ev2", "o2", "p1", pickedAmount=1).status_code == 200
    o1 = check(api.get("o1"), ORDER_PATH, "get", 200)  # read-your-writes: no sleep
    assert o1["packingStatus"] == "IN_PROGRESS"
    e1 = entry(o1, "e1")
    assert (e1["pickedCount"], e1["packedCount"], e1["canceledCount"]) == (2, 1, 0)
    assert e1["packedAmountInPc"] == 1

    assert api.event("ev3", "o1", "p1", canceledAmount=1).status_code == 200
    assert api.event("ev4", "o1", "p2", unit="GRM", packedAmount=1000).status_code == 200
    o1 = check(api.get("o1"), ORDER_PATH, "get", 200)
    assert o1["packingStatus"] == "PRE_PACKED"
    e2 = entry(o1, "e2")
    assert (e2["packedCount"], e2["packedAmountInPc"]) == (1000, 2)

    # the events feed converts the weighed amount with the registered entry's measure
    feed = api.s.events().json()
    assert next(e for e in feed if e["eventId"] == "ev4")["packedAmountInPc"] == 2

    packlist = check(api.packlist(), LIST_PATH, "get", 200)
    assert [o["orderId"] for o in packlist] == ["o2", "o3", "o1"]  # by delivery window end
    first = packlist[2]
    # pieces and grams are never added (docs/explanation/semantics.md, "Progress"): no
    # productsTotal for an order in two units, its totals per unit, and its lines
    assert "productsTotal" not in first and "productsPacked" not in first
    assert first["unitTotals"] == [
        {"unit": "H87", "totalCount": 2, "packedCount": 1, "canceledCount": 1},
        {"unit": "GRM", "totalCount": 1, "packedCount": 1000, "canceledCount": 0},
    ]
    assert (first["linesTotal"], first["linesComplete"]) == (2, 2)
    one_unit = packlist[0]  # o2: pieces only, so its products* add like units
    assert (one_unit["productsTotal"], one_unit["linesTotal"]) == (2, 1)
    assert first["customerName"] == "Ada Lovelace"
    assert first["deliveryWindow"]["deliveryTimeTo"].startswith(DAY)
    assert packlist[0]["packingStatus"] == "IN_PROGRESS"
    assert entry(packlist[0], "e1")["pickedCount"] == 1

    # cancel o3: gone from the packlist, every write refused, reads still work
    check(api.patch("o3", "CANCELLED"), ORDER_PATH, "patch", 200)
    assert [o["orderId"] for o in check(api.packlist(), LIST_PATH, "get", 200)] == ["o2", "o1"]
    # ... unless asked for: the board counts the day's cancelled orders
    everything = api.c.get(
        "/pick-pack/demo/orders",
        params={"siteCode": "main", "deliveryDate": DAY, "includeCancelled": "true"},
        headers=auth(),
    ).json()
    assert [(o["orderId"], o["packingStatus"]) for o in everything] == [
        ("o2", "IN_PROGRESS"),
        ("o3", "CANCELLED"),
        ("o1", "PRE_PACKED"),
    ]
    refused = [
        api.event("ev5", "o3", "p1", packedAmount=1),
        api.patch("o3", "IN_PROGRESS"),
        api.assign("o3", ASSIGNEE_A),
        api.packaging("o3", [{"entryId": "bag", "packedCount": 1}]),
        api.put("o3", order("o3", "11:00:00")),
        api.unassign("o3", "a-1"),
    ]
    for resp in refused:
        body = check(resp, ORDER_PATH, "patch", 409)
        assert body["code"] == 409 and "o3" in body["detailInfo"]
    o3 = check(api.get("o3"), ORDER_PATH, "get", 200)
    assert o3["packingStatus"] == "CANCELLED"


def test_registration_ignores_server_owned_fields_and_keeps_the_ledger(api: Api) -> None:
    doc = order("other-id", "12:00:00")
    doc.update(packingStatus="PACKED", holdingAreaNumber=99, assignees=[ASSIGNEE_A])
    doc["entries"][0].update(pickedCount=50, packedCount=50)
    api.register("o1", doc)
    api.register("o1", doc)  # idempotent
    assert api.event("ev1", "o1", "p1", packedAmount=1).status_code == 200
    renamed = order("o1", "12:00:00")
    renamed["entries"][0]["productName"] = "Green apples"
    api.register("o1", renamed)
    body = check(api.get("o1"), ORDER_PATH, "get", 200)
    assert body["id"] == "o1"  # the path wins
    assert body["packingStatus"] == "IN_PROGRESS"
    assert "holdingAreaNumber" not in body and "assignees" not in body
    e1 = entry(body, "e1")
    assert (e1["productName"], e1["packedCount"], e1["pickedCount"]) == ("Green apples", 1, 0)


def test_invalid_order_documents_are_400_naming_the_field(api: Api) -> None:
    resp = api.put("o1", {"entries": [{"entryId": "e1", "totalCount": 1}]})
    assert resp.status_code == 400
    assert resp.json()["detailInfo"].startswith("entries[0].productId")
    resp = api.put("o1", {"entries": [{"productId": "p", "totalCount": -1}]})
    assert resp.json()["detailInfo"].startswith("entries[0].totalCount")
    assert api.c.put("/pick-pack/demo/orders/o1", json=[1], headers=auth()).status_code == 400


def test_assignees_force_semantics(api: Api) -> None:
    api.register("o1", order("o1", "12:00:00"))
    check(api.assign("o1", ASSIGNEE_A, force=False), ASSIGNEES, "post", 200)
    body = check(api.get("o1"), ORDER_PATH, "get", 200)
    assert body["assignees"] == [ASSIGNEE_A] and body["packingStatus"] == "IN_PROGRESS"

    resp = check(api.assign("o1", ASSIGNEE_B, force=False), ASSIGNEES, "post", 400)
    assert "o1" in resp["detailInfo"]
    check(api.assign("o1", ASSIGNEE_A, force=False), ASSIGNEES, "post", 200)  # same one again
    check(api.assign("o1", ASSIGNEE_B), ASSIGNEES, "post", 200)  # force defaults to true
    assert check(api.get("o1"), ORDER_PATH, "get", 200)["assignees"] == [ASSIGNEE_B]
    listed = check(api.packlist(), LIST_PATH, "get", 200)
    assert listed[0]["assignees"] == [ASSIGNEE_B]

    check(api.unassign("o1", "b-2"), ASSIGNEE, "delete", 204)
    check(api.unassign("o1", "b-2"), ASSIGNEE, "delete", 204)  # idempotent
    assert "assignees" not in check(api.get("o1"), ORDER_PATH, "get", 200)

    bad = api.assign("o1", {"id": "x", "firstName": "No", "lastName": "Site"})
    assert check(bad, ASSIGNEES, "post", 400)["detailInfo"] == "siteCode: required field is missing"


def test_holding_area_number_is_assigned_once_and_never_reused(api: Api) -> None:
    for oid in ("o1", "o2", "o3"):
        api.register(oid, order(oid, "12:00:00"))
    check(api.patch("o1", "PACKED"), ORDER_PATH, "patch", 200)
    o1 = check(api.get("o1"), ORDER_PATH, "get", 200)
    assert (o1["packingStatus"], o1["holdingAreaNumber"]) == ("PACKED", 1)

    check(api.patch("o1", "IN_PROGRESS"), ORDER_PATH, "patch", 200)  # re-open, pack again
    check(api.patch("o1", "PACKED"), ORDER_PATH, "patch", 200)
    assert check(api.get("o1"), ORDER_PATH, "get", 200)["holdingAreaNumber"] == 1

    check(api.patch("o2", "PRE_PACKED"), ORDER_PATH, "patch", 200)
    assert "holdingAreaNumber" not in check(api.get("o2"), ORDER_PATH, "get", 200)
    check(api.patch("o2", "PACKED"), ORDER_PATH, "patch", 200)
    check(api.patch("o3", "CANCELLED"), ORDER_PATH, "patch", 200)
    assert check(api.patch("o3", "PACKED"), ORDER_PATH, "patch", 409)["code"] == 409
    check(api.patch("o1", "PACKED"), ORDER_PATH, "patch", 200)
    assert check(api.get("o2"), ORDER_PATH, "get", 200)["holdingAreaNumber"] == 2
    assert "holdingAreaNumber" not in check(api.get("o3"), ORDER_PATH, "get", 200)
    # the refused PATCH on o3 gave its number back: the next order gets 3
    api.register("o4", order("o4", "12:00:00"))
    check(api.patch("o4", "PACKED"), ORDER_PATH, "patch", 200)
    assert check(api.get("o4"), ORDER_PATH, "get", 200)["holdingAreaNumber"] == 3


def test_status_and_packaging_validation(api: Api) -> None:
    api.register("o1", order("o1", "12:00:00"))
    body = check(api.patch("o1", "DONE"), ORDER_PATH, "patch", 400)
    assert body["detailInfo"].startswith("packingStatus")
    body = check(
        api.c.patch("/pick-pack/demo/orders/o1", json={}, headers=auth()), ORDER_PATH, "patch", 400
    )
    assert body["detailInfo"] == "packingStatus: required field is missing"

    body = check(
        api.packaging(
            "o1", [{"entryId": "bag", "packedCount": 1}, {"entryId": "box", "packedCount": -1}]
        ),
        PACKAGING,
        "put",
        400,
    )
    assert body["detailInfo"].startswith("[1].packedCount")
    body = check(
        api.packaging("o1", [{"entryId": "bag", "packedCount": "1"}]), PACKAGING, "put", 400
    )
    assert body["detailInfo"].startswith("[0].packedCount")
    body = check(api.packaging("o1", [{"packedCount": 1}]), PACKAGING, "put", 400)
    assert body["detailInfo"] == "[0].entryId: required field is missing"

    packaging = [{"entryId": "bag", "packedCount": 2}, {"entryId": "box", "packedCount": 1}]
    check(api.packaging("o1", packaging), PACKAGING, "put", 200)
    assert check(api.get("o1"), ORDER_PATH, "get", 200)["packagingProducts"] == packaging


def test_unknown_orders_are_404(api: Api) -> None:
    assert api.event("ev1", "ghost", "p1", packedAmount=1).status_code == 200  # kept, not shown
    for resp, path, method in [
        (api.get("ghost"), ORDER_PATH, "get"),
        (api.patch("ghost", "PACKED"), ORDER_PATH, "patch"),
        (api.assign("ghost", ASSIGNEE_A), ASSIGNEES, "post"),
        (api.packaging("ghost", [{"entryId": "bag", "packedCount": 1}]), PACKAGING, "put"),
    ]:
        body = check(resp, path, method, 404)
        assert body["code"] == 404 and "ghost" in body["detailInfo"]
    assert check(api.packlist(), LIST_PATH, "get", 200) == []


def test_order_cycles(api: Api) -> None:
    api.register("o1", order("o1", "12:00:00", day=NEXT_DAY))
    api.register("o2", order("o2", "12:00:00", day=DAY))
    api.register("o3", order("o3", "09:00:00", day=DAY))
    api.register("o4", order("o4", "12:00:00", day=PAST_DAY))
    api.register("o5", order("o5", "12:00:00", day=DAY, site="other"))
    far = (TODAY + timedelta(days=9)).isoformat()
    api.register("o6", order("o6", "12:00:00", day=far))
    check(api.patch("o6", "CANCELLED"), ORDER_PATH, "patch", 200)
    today = TODAY.isoformat()
    api.register("o7", order("o7", "23:59:00", day=today))

    assert check(api.cycles(), CYCLES, "get", 200) == [today, DAY, NEXT_DAY]
    assert check(api.cycles("other"), CYCLES, "get", 200) == [DAY]
    assert check(api.cycles("nowhere"), CYCLES, "get", 200) == []
    assert api.cycles("x").status_code == 400  # siteCode: 3 to 16 characters


def test_packlist_parameters_and_scopes(api: Api) -> None:
    resp = api.c.get(
        "/pick-pack/demo/orders",
        params={"siteCode": "main", "deliveryDate": "13.11.2020"},
        headers=auth(),
    )
    assert resp.status_code == 400 and resp.json()["detailInfo"].startswith("deliveryDate")
    resp = api.c.get("/pick-pack/demo/orders", params={"siteCode": "main"}, headers=auth())
    assert resp.status_code == 400
    view_only = auth(scopes=["pickpack.pickpack_view"])
    assert (
        api.c.put(
            "/pick-pack/demo/orders/o1", json=order("o1", "12:00:00"), headers=view_only
        ).status_code
        == 403
    )
    assert api.c.get("/pick-pack/demo/orders/o1", headers=view_only).status_code == 404
    manage_only = auth(scopes=["pickpack.pickpack_manage"])
    assert api.c.get("/pick-pack/demo/orders/o1", headers=manage_only).status_code == 403
    no_saas = {"Authorization": auth()["Authorization"]}
    api.register("o1", order("o1", "12:00:00"))
    assert (
        api.c.patch(
            "/pick-pack/demo/orders/o1", json={"packingStatus": "PACKED"}, headers=no_saas
        ).status_code
        == 400
    )
    assert (
        api.c.post(
            "/pick-pack/demo/orders/o1/assignees", json=ASSIGNEE_A, headers=no_saas
        ).status_code
        == 200
    )


def test_orders_are_per_tenant(api: Api, service: Service) -> None:
    api.register("o1", order("o1", "12:00:00"))
    other = Api(service, tenant="acme")
    assert other.get("o1").status_code == 404
    assert check(other.packlist(), LIST_PATH, "get", 200) == []


def test_concurrent_packing_never_shares_a_holding_area(api: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ids = [f"c{i}" for i in range(12)]
    for oid in ids:
        api.register(oid, order(oid, "12:00:00"))
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(lambda oid: api.patch(oid, "PACKED").status_code, ids * 2))
    assert set(codes) == {200}
    numbers = [check(api.get(oid), ORDER_PATH, "get", 200)["holdingAreaNumber"] for oid in ids]
    assert sorted(numbers) == list(range(1, 13))


def test_re_registration_re_derives_an_automatic_status(api: Api) -> None:
    api.register("o1", order("o1", "12:00:00"))
    assert api.event("ev1", "o1", "p1", packedAmount=2).status_code == 200
    assert check(api.get("o1"), ORDER_PATH, "get", 200)["packingStatus"] == "PRE_PACKED"
    bigger = order("o1", "12:00:00")
    bigger["entries"][0]["totalCount"] = 5
    api.register("o1", bigger)
    assert check(api.get("o1"), ORDER_PATH, "get", 200)["packingStatus"] == "IN_PROGRESS"


def test_a_documents_numbers_are_shown_exactly_as_registered(api: Api) -> None:
    numbers = {"erpKey": 2**63 - 1, "lowest": -(2**63), "weight": 0.1, "big": 1.5e300, "n": -7}
    doc = order("o1", "12:00:00")
    doc["mixins"] = numbers
    api.register("o1", doc)
    for i in range(3):  # each event: the state loaded from the view, folded and saved again
        assert api.event(f"ev{i}", "o1", "p1", packedAmount=1).status_code == 200
        body = check(api.get("o1"), ORDER_PATH, "get", 200)
        assert body["mixins"] == numbers
