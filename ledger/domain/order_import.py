"""Order Service salesorder -> pick-pack `Order` document. Pure mapping, no I/O.

The Order Service (emporix-order-api.yml, `salesOrder`) and the Pick-Pack spec (`Order`)
describe the same order in different shapes. This keeps what a pack station needs:
entries (entryId = the entry's `id`, productId and name from the product snapshot,
totalCount = the ordered amount), site, customer, delivery window and prices.

Where the Order Service has no equivalent field:
- `orderUnit`: an entry's amount counts items, so the unit is pieces (H87) unless the
  entry says otherwise (`orderUnit` or `mixins.orderUnit`).
- `unitPricingMeasure`: the entry's `measurementUnit` ({unit, value}: how much one item
  holds), which packedAmountInPc needs for weighed units.
- `deliveryWindow.deliveryTimeTo`: the window's date and `timeTo`, taken as UTC (the
  Order Service gives no zone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PIECES = "H87"


class NotAnOrder(ValueError):
    """The document is not a salesorder this mapping understands."""


def _clean(value: Any) -> Any:
    """Drop None and empty containers, recursively: absent rather than null."""
    if isinstance(value, Mapping):
        out = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _money(value: Any) -> Any:
    """A price that may be a number or a calculatedPrice-style {grossValue, ...}."""
    if isinstance(value, Mapping):
        return value.get("grossValue", value.get("amount"))
    return value


def map_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    product = entry.get("product") or {}
    measure = entry.get("measurementUnit") or {}
    mixins = entry.get("mixins") or {}
    images = product.get("images") or []
    ordered = entry.get("orderedAmount")
    if ordered is None:
        ordered = entry.get("amount")
    product_id = product.get("id") or entry.get("id")
    if not product_id:
        raise NotAnOrder("entries: an entry has neither product.id nor id")
    calculated = entry.get("calculatedPrice") or {}
    return _clean(
        {
            "entryId": str(entry.get("id") or product_id),
            "productId": str(product_id),
            "productName": product.get("name"),
            "totalCount": int(ordered or 0),
            "orderUnit": entry.get("orderUnit") or mixins.get("orderUnit") or PIECES,
            "unitPricingMeasure": (
                {"unitCode": str(measure["unit"]), "value": str(measure["value"])}
                if measure.get("unit") and measure.get("value") is not None
                else None
            ),
            "imageUrl": images[0].get("url") if images and isinstance(images[0], Mapping) else None,
            "unitPrice": _money(entry.get("calculatedUnitPrice")) or entry.get("unitPrice"),
            "totalPrice": _money(calculated.get("finalPrice")) or entry.get("totalPrice"),
        }
    )


def _customer(customer: Mapping[str, Any], phone: Any) -> dict[str, Any]:
    return {
        "id": customer.get("id"),
        "title": customer.get("title"),
        "firstName": customer.get("firstName"),
        "lastName": customer.get("lastName"),
        "name": customer.get("name"),
        "companyName": customer.get("company"),
        "email": customer.get("email"),
        "phoneNumber": phone,
    }


def _address(address: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "contactName": address.get("contactName"),
        "companyName": address.get("companyName"),
        "street": address.get("street"),
        "streetNumber": address.get("streetNumber"),
        "streetAppendix": address.get("streetAppendix"),
        "zip": address.get("zipCode"),
        "city": address.get("city"),
        "country": address.get("country"),
    }


def _delivery(order: Mapping[str, Any]) -> dict[str, Any]:
    window = order.get("deliveryWindow") or {}
    times = window.get("deliveryTimeRange") or {}
    day = window.get("deliveryDate")
    time_to = times.get("timeTo")
    end = None
    if day and time_to:
        end = f"{day}T{time_to}{':00' if len(str(time_to)) == 5 else ''}Z"
    return {
        "deliveryTimeModel": {
            "deliveryDate": day,
            "deliveryTimeFrom": times.get("timeFrom"),
            "deliveryTimeTo": time_to,
        },
        "deliveryWindow": {
            "deliveryCycle": window.get("deliveryCycle") or order.get("orderCycle"),
            "deliveryCycleName": window.get("deliveryCycleName"),
            "deliveryTimeTo": end,
        },
        "deliveryAddressModel": _address(order.get("shippingAddress") or {}),
    }


def from_sales_order(order: Mapping[str, Any]) -> dict[str, Any]:
    """The pick-pack Order document for an Order Service salesorder."""
    if not isinstance(order, Mapping) or not order.get("id"):
        raise NotAnOrder("id: a salesorder needs its id")
    entries = order.get("entries") or []
    if not isinstance(entries, list):
        raise NotAnOrder("entries: must be an array")
    shipping = order.get("shippingAddress") or {}
    calculated = order.get("calculatedPrice") or {}
    return _clean(
        {
            "id": str(order["id"]),
            "siteCode": order.get("siteCode"),
            "currency": order.get("currency"),
            "orderTotal": _money(calculated.get("finalPrice")) or order.get("totalPrice"),
            "valueOfGoods": order.get("subTotalPrice"),
            "entries": [map_entry(e) for e in entries if isinstance(e, Mapping)],
            "customer": _customer(order.get("customer") or {}, shipping.get("contactPhone")),
            "delivery": _delivery(order),
            "payment": {"invoiceAddress": _address(order.get("billingAddress") or {})},
        }
    )


# Orders a pack station still has work on: placed and not yet shipped, completed or declined.
OPEN_STATUSES = ("CREATED", "CONFIRMED")


def open_orders_query(
    site: str, from_date: str, to_date: str | None = None, statuses: tuple[str, ...] = OPEN_STATUSES
) -> str:
    """The Order API's `q` for a site's open orders delivered from `from_date` (to
    `to_date`, inclusive; open-ended without it, so nothing later is missed).

    Dates are the delivery window's `deliveryDate` (format date); ValueError for a
    malformed date or an empty site.
    """
    from datetime import date

    if not site or any(c in site for c in ' ()",:'):
        raise ValueError(f"site: not a site code: {site!r}")
    first = date.fromisoformat(from_date).isoformat()
    window = f'>="{first}"'
    if to_date is not None:
        last = date.fromisoformat(to_date).isoformat()
        if last < first:
            raise ValueError("to-date: before from-date")
        window = f'(>="{first}" AND <="{last}")'
    return f"siteCode:{site} deliveryWindow.deliveryDate:{window} status:({','.join(statuses)})"
