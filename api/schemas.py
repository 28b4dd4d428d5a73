"""Request bodies, validated strictly: a wrong type is a 400 naming the field.

Strict mode: "1" is not an integer, 1.5 is not an integer, 1 is not a string. Unknown
fields are ignored, as the issue asks, so newer scanners keep working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger.domain.inputs import ID_MAX_LENGTH, ID_PATTERN, MAX_AMOUNT
from ledger.domain.packing import PackingEvent, format_event_time, parse_event_time
from ledger.domain.scan_fields import SPEC

NonNegative = Annotated[int, Field(ge=0, le=MAX_AMOUNT, strict=True)]
# An identifier: see ledger/domain/inputs.py for the rule and why (docs/explanation/semantics.md).
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]


# Each field is named as the PackingEvent field it fills and carries the spec's name as
# its alias (what a request sends, what errors and the OpenAPI document show), both from
# the one table of a scan's names (ledger/domain/scan_fields.py). `to_event` is generated
# from these fields, and tests/domain/test_event_body.py fails when a field is on one side
# only.
class OrderEntryEventCreate(BaseModel):
    """The spec's OrderEntryEventCreate."""

    model_config = ConfigDict(strict=True, extra="ignore")

    event_id: Annotated[Identifier, Field(alias=SPEC["event_id"], examples=["123"])]
    order_id: Annotated[Identifier, Field(alias=SPEC["order_id"], examples=["123"])]
    product_id: Annotated[Identifier, Field(alias=SPEC["product_id"], examples=["123"])]
    delivery_cycle: Annotated[
        Identifier | None, Field(alias=SPEC["delivery_cycle"], examples=["2023-10-13-11-test"])
    ] = None
    picked: Annotated[NonNegative, Field(alias=SPEC["picked"], examples=[1])] = 0
    packed: Annotated[NonNegative, Field(alias=SPEC["packed"], examples=[1])] = 0
    canceled: Annotated[NonNegative, Field(alias=SPEC["canceled"], examples=[0])] = 0
    supplier_id: Annotated[
        Identifier | None, Field(alias=SPEC["supplier_id"], examples=["123"])
    ] = None
    unit: Annotated[Identifier, Field(alias=SPEC["unit"], examples=["H87"])]
    event_time: Annotated[
        str,
        Field(
            alias=SPEC["event_time"],
            max_length=64,
            description="Timestamp of the packing event in ISO format",
            json_schema_extra={"format": "date-time"},
            examples=["2020-09-14T13:35:18.333Z"],
        ),
    ]
    site: Annotated[Identifier, Field(alias=SPEC["site"], examples=["main"])]
    book_product: Annotated[bool | None, Field(alias=SPEC["book_product"], examples=[True])] = None

    @field_validator("event_time")
    @classmethod
    def _iso_8601(cls, value: str) -> str:
        try:
            return format_event_time(parse_event_time(value))
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 date-time with `Z` or an offset ({exc})") from None

    def to_event(self, tenant: str) -> PackingEvent:
        """The validated body as the domain's PackingEvent. An absent amount is 0; a
        `null` one is a 400 like any other value that is not an integer (the rules say
        absent = 0, docs/explanation/semantics.md)."""
        return _to_event(self, tenant)


def _to_event_source() -> str:
    """`to_event`'s body, from PackingEvent's fields: each is the body's field of the same
    name, or the tenant; an absent (None) value takes the event's own default when it has
    one that is not None (the amounts' 0). Generated, as `dataclasses` builds `__init__`,
    so that the scanners' hot path runs a plain call, as fast as one written by hand."""
    body = OrderEntryEventCreate.model_fields
    arguments = []
    for field in dataclasses.fields(PackingEvent):
        name = field.name
        if name == "tenant":
            arguments.append("tenant=tenant")
        elif name not in body:
            raise TypeError(f"PackingEvent.{name}: OrderEntryEventCreate has no such field")
        elif field.default is dataclasses.MISSING or field.default is None:
            arguments.append(f"{name}=body.{name}")
        else:
            default = repr(field.default)
            arguments.append(f"{name}=body.{name} if body.{name} is not None else {default}")
    extra = set(body) - {f.name for f in dataclasses.fields(PackingEvent)}
    if extra:
        names = ", ".join(sorted(extra))
        raise TypeError(f"OrderEntryEventCreate.{names}: PackingEvent has no such field")
    return "def to_event(body, tenant):\n    return PackingEvent(" + ", ".join(arguments) + ")\n"


def _compile_to_event() -> Callable[[OrderEntryEventCreate, str], PackingEvent]:
    namespace: dict[str, Any] = {"PackingEvent": PackingEvent}
    exec(_to_event_source(), namespace)  # the source is built from field names only
    function: Callable[[OrderEntryEventCreate, str], PackingEvent] = namespace["to_event"]
    return function


_to_event = _compile_to_event()


class SuccessResponse(BaseModel):
    message: str = "Success"
    code: int = 200


class OrderEntryEventResponse(BaseModel):
    """The spec's OrderEntryEventResponse."""

    eventId: str | None = None
    productId: str | None = None
    deliveryCycle: str | None = None
    orderNumber: str | None = None
    timestamp: str | None = None
    pickedAmount: int | None = None
    packedAmount: int | None = None
    canceledAmount: int | None = None
    packedAmountInPc: int | None = None
    supplierId: str | None = None
    user: str | None = None
    site: str | None = None
    unit: str | None = None
    bookProduct: bool | None = None


class ErrorMessage(BaseModel):
    code: int
    message: str
    detailInfo: str | None = None
