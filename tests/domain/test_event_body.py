"""POST /events' body and the domain's PackingEvent have the same fields, one to one.

The body model names each field as the PackingEvent field it fills, with the spec's name
as its alias; `to_event` is generated from PackingEvent's fields. A field added to one
and not the other must fail here, not reach a scanner as a silently dropped value.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from api import schemas
from api.schemas import OrderEntryEventCreate
from devtools.harness.support import numbered_scan, packing_event, scan_body, scan_of_body
from ledger.domain.packing import PackingEvent

# The spec's OrderEntryEventCreate properties (tests/spec/emporix-pick-pack-api.yml).
SPEC_NAMES = {
    "eventId",
    "orderNumber",
    "productId",
    "deliveryCycle",
    "pickedAmount",
    "packedAmount",
    "canceledAmount",
    "supplierId",
    "unit",
    "timestamp",
    "site",
    "bookProduct",
}


def test_the_body_has_every_field_of_the_event_but_the_tenant_and_no_other() -> None:
    event_fields = {f.name for f in dataclasses.fields(PackingEvent)}
    assert set(OrderEntryEventCreate.model_fields) == event_fields - {"tenant"}


def test_the_body_reads_the_spec_names() -> None:
    aliases = {f.alias for f in OrderEntryEventCreate.model_fields.values()}
    assert aliases == SPEC_NAMES


def test_every_field_sent_reaches_the_event() -> None:
    body = OrderEntryEventCreate.model_validate(
        {
            "eventId": "e1",
            "orderNumber": "o1",
            "productId": "p1",
            "deliveryCycle": "c1",
            "pickedAmount": 3,
            "packedAmount": 2,
            "canceledAmount": 1,
            "supplierId": "s1",
            "unit": "H87",
            "timestamp": "2024-05-01T12:00:00+02:00",
            "site": "main",
            "bookProduct": False,
        }
    )
    assert body.to_event("demo") == PackingEvent(
        tenant="demo",
        event_id="e1",
        order_id="o1",
        product_id="p1",
        unit="H87",
        event_time="2024-05-01T10:00:00.000Z",
        site="main",
        picked=3,
        packed=2,
        canceled=1,
        delivery_cycle="c1",
        supplier_id="s1",
        book_product=False,
    )


def test_absent_amounts_are_zero_and_absent_optionals_none() -> None:
    body = OrderEntryEventCreate.model_validate(
        {
            "eventId": "e1",
            "orderNumber": "o1",
            "productId": "p1",
            "unit": "H87",
            "timestamp": "2024-05-01T10:00:00Z",
            "site": "main",
        }
    )
    event = body.to_event("demo")
    assert (event.picked, event.packed, event.canceled) == (0, 0, 0)
    assert (event.delivery_cycle, event.supplier_id, event.book_product) == (None, None, None)


def _with(fields: dict[str, Any]) -> type[BaseModel]:
    model: type[BaseModel] = type(
        "Body", (BaseModel,), {"__annotations__": fields, "model_config": ConfigDict()}
    )
    return model


def test_generation_refuses_a_field_on_one_side_only(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {name: f.annotation for name, f in OrderEntryEventCreate.model_fields.items()}
    monkeypatch.setattr(schemas, "OrderEntryEventCreate", _with({**fields, "pallet": str}))
    with pytest.raises(TypeError, match="pallet"):
        schemas._to_event_source()
    del fields["site"]
    monkeypatch.setattr(schemas, "OrderEntryEventCreate", _with(fields))
    with pytest.raises(TypeError, match="site"):
        schemas._to_event_source()


def test_the_tests_scan_bodies_mean_what_the_api_reads() -> None:
    """devtools/harness/support.py writes bodies from its own copy of the spec's names."""
    full = packing_event(
        "e1", picked=1, packed=2, canceled=3, delivery_cycle="c", supplier_id="s", book_product=True
    )
    for event in (packing_event("e2"), numbered_scan(7), full):
        body = scan_body(event)
        assert OrderEntryEventCreate.model_validate(body).to_event("demo") == event
        assert scan_of_body(body) == event
