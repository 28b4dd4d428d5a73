"""Holding areas are places (docs/explanation/semantics.md, "Holding areas"): numbered per
site and delivery date from 1, in the order that the site's orders of that date first
become PACKED, never handed out twice within that site and date; an order keeps its
number. Over HTTP against the running service."""

from __future__ import annotations

from typing import Any

import psycopg

from devtools.harness.service import Service, auth


def order(order_id: str, site: str, day: str) -> dict[str, Any]:
    return {
        "id": order_id,
        "siteCode": site,
        "delivery": {"deliveryTimeModel": {"deliveryDate": day}},
        "entries": [{"entryId": "e1", "productId": "p1", "orderUnit": "H87", "totalCount": 1}],
    }


def register(service: Service, order_id: str, site: str, day: str) -> None:
    answer = service.client.put(
        f"/pick-pack/demo/orders/{order_id}", json=order(order_id, site, day), headers=auth()
    )
    assert answer.status_code == 200, answer.text


def pack(service: Service, order_id: str, how: str = "finish") -> None:
    if how == "finish":
        answer = service.client.post(f"/pick-pack/demo/orders/{order_id}/finish", headers=auth())
    else:
        answer = service.client.patch(
            f"/pick-pack/demo/orders/{order_id}",
            json={"packingStatus": how},
            headers={**auth(), "saas-token": "t"},
        )
    assert answer.status_code == 200, answer.text


def number(service: Service, order_id: str) -> int | None:
    body = service.client.get(f"/pick-pack/demo/orders/{order_id}", headers=auth()).json()
    return body.get("holdingAreaNumber")


def packlist_numbers(service: Service, site: str, day: str) -> dict[str, int | None]:
    items = service.client.get(
        "/pick-pack/demo/orders", params={"siteCode": site, "deliveryDate": day}, headers=auth()
    ).json()
    return {i["orderId"]: i.get("holdingAreaNumber") for i in items}


def test_each_site_and_date_numbers_its_orders_from_one_in_packing_order(
    service: Service,
) -> None:
    places = {
        "a1": ("north", "2026-12-01"),
        "a2": ("north", "2026-12-01"),
        "a3": ("north", "2026-12-01"),
        "b1": ("south", "2026-12-01"),
        "c1": ("north", "2026-12-02"),
        "c2": ("north", "2026-12-02"),
    }
    for order_id, (site, day) in places.items():
        register(service, order_id, site, day)
    # first PACKED order: a3, then c2, b1, a1 (by PATCH), c1, a2
    pack(service, "a3")
    pack(service, "c2")
    pack(service, "b1", how="PACKED")
    pack(service, "a1", how="PACKED")
    pack(service, "c1")
    pack(service, "a2")
    assert packlist_numbers(service, "north", "2026-12-01") == {"a1": 2, "a2": 3, "a3": 1}
    assert packlist_numbers(service, "south", "2026-12-01") == {"b1": 1}
    assert packlist_numbers(service, "north", "2026-12-02") == {"c1": 2, "c2": 1}


def test_a_number_is_kept_and_never_handed_out_again_at_its_place(service: Service) -> None:
    for order_id in ("o1", "o2", "o3"):
        register(service, order_id, "main", "2026-12-01")
    pack(service, "o1")
    pack(service, "o1", how="IN_PROGRESS")  # re-opened, packed again: the same place
    pack(service, "o1")
    assert number(service, "o1") == 1
    pack(service, "o2", how="CANCELLED")
    refused = service.client.post("/pick-pack/demo/orders/o2/finish", headers=auth())
    assert refused.status_code == 409  # a refusal takes no number
    pack(service, "o3")
    assert (number(service, "o1"), number(service, "o2"), number(service, "o3")) == (1, None, 2)


def test_a_place_with_orders_numbered_before_goes_on_after_the_largest(
    service: Service, db_url: str
) -> None:
    """An order numbered by the previous release (one sequence per tenant: 40, say) keeps
    its number, and the next order of its site and date gets 41, not 1 again."""
    for order_id in ("old", "new"):
        register(service, order_id, "main", "2026-12-01")
    pack(service, "old")
    # A read waits until the views hold the finish (read-your-writes), so the projection
    # has written old's row before the UPDATE below and cannot write it over afterwards.
    assert number(service, "old") == 1
    # What the store looks like after an order was numbered from the tenant's sequence:
    # its number in the order's view, and no row for the place.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE order_status SET holding_area_number = 40 WHERE order_id = 'old'")
        conn.execute("DELETE FROM holding_area_places")
    pack(service, "new")
    assert number(service, "new") == 41
