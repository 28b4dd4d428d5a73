"""A pack station over HTTP for the story tests: orders, assignees, packaging, scans."""

from __future__ import annotations

from typing import Any

import httpx

from devtools.harness.service import EXAMPLE_EVENT, Service, auth

ASSIGNEE_A = {"id": "a-1", "siteCode": "main", "firstName": "John", "lastName": "Smith"}


def order(order_id: str, day: str = "2030-01-02") -> dict[str, Any]:
    """An order document with one entry: p1, two pieces."""
    return {
        "id": order_id,
        "siteCode": "main",
        "delivery": {
            "deliveryTimeModel": {"deliveryDate": day},
            "deliveryWindow": {"deliveryTimeTo": f"{day}T12:00:00Z"},
        },
        "entries": [
            {"entryId": "e1", "productId": "p1", "totalCount": 2, "orderUnit": "H87"},
        ],
    }


class Api:
    """Thin HTTP helpers so the tests read as the scenario they check."""

    def __init__(self, service: Service, tenant: str = "demo") -> None:
        self.c = service.client
        self.s = service
        self.t = tenant

    def _order(self, order_id: str) -> str:
        return f"/pick-pack/{self.t}/orders/{order_id}"

    def register(self, order_id: str, doc: dict[str, Any]) -> None:
        resp = self.c.put(self._order(order_id), json=doc, headers=auth(self.t))
        assert resp.status_code == 200, resp.text

    def get(self, order_id: str) -> httpx.Response:
        return self.c.get(self._order(order_id), headers=auth(self.t))

    def patch(self, order_id: str, status: str) -> httpx.Response:
        return self.c.patch(
            self._order(order_id), json={"packingStatus": status}, headers=auth(self.t)
        )

    def assign(self, order_id: str, who: dict[str, Any]) -> httpx.Response:
        return self.c.post(f"{self._order(order_id)}/assignees", json=who, headers=auth(self.t))

    def unassign(self, order_id: str, assignee_id: str) -> httpx.Response:
        return self.c.delete(
            f"{self._order(order_id)}/assignees/{assignee_id}", headers=auth(self.t)
        )

    def packaging(self, order_id: str, body: Any) -> httpx.Response:
        return self.c.put(f"{self._order(order_id)}/packaging", json=body, headers=auth(self.t))

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
            },
            tenant=self.t,
        )


def finish(service: Service, order_id: str) -> httpx.Response:
    return service.client.post(f"/pick-pack/demo/orders/{order_id}/finish", headers=auth())
