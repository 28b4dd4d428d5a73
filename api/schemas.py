"""Request bodies, validated strictly: a wrong type is a 400 naming the field.

Strict mode: "1" is not an integer, 1.5 is not an integer, 1 is not a string. Unknown
fields are ignored, as the issue asks, so newer scanners keep working.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger.domain.inputs import ID_MAX_LENGTH, ID_PATTERN, MAX_AMOUNT
from ledger.domain.packing import PackingEvent, format_event_time, parse_event_time

NonNegative = Annotated[int, Field(ge=0, le=MAX_AMOUNT, strict=True)]
# An identifier: see ledger/inputs.py for the rule and why (docs/explanation/semantics.md).
Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]


class OrderEntryEventCreate(BaseModel):
    """The spec's OrderEntryEventCreate."""

    model_config = ConfigDict(strict=True, extra="ignore")

    eventId: Annotated[Identifier, Field(examples=["123"])]
    orderNumber: Annotated[Identifier, Field(examples=["123"])]
    productId: Annotated[Identifier, Field(examples=["123"])]
    deliveryCycle: Annotated[Identifier | None, Field(examples=["2023-10-13-11-test"])] = None
    pickedAmount: Annotated[NonNegative | None, Field(examples=[1])] = None
    packedAmount: Annotated[NonNegative | None, Field(examples=[1])] = None
    canceledAmount: Annotated[NonNegative | None, Field(examples=[0])] = None
    supplierId: Annotated[Identifier | None, Field(examples=["123"])] = None
    unit: Annotated[Identifier, Field(examples=["H87"])]
    timestamp: Annotated[
        str,
        Field(
            max_length=64,
            description="Timestamp of the packing event in ISO format",
            json_schema_extra={"format": "date-time"},
            examples=["2020-09-14T13:35:18.333Z"],
        ),
    ]
    site: Annotated[Identifier, Field(examples=["main"])]
    bookProduct: Annotated[bool | None, Field(examples=[True])] = None

    @field_validator("timestamp")
    @classmethod
    def _iso_8601(cls, value: str) -> str:
        try:
            return format_event_time(parse_event_time(value))
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 date-time with `Z` or an offset ({exc})") from None

    def to_event(self, tenant: str) -> PackingEvent:
        """The validated body as the domain's PackingEvent (absent amounts are 0)."""
        return PackingEvent(
            tenant=tenant,
            event_id=self.eventId,
            order_id=self.orderNumber,
            product_id=self.productId,
            unit=self.unit,
            event_time=self.timestamp,
            site=self.site,
            picked=self.pickedAmount or 0,
            packed=self.packedAmount or 0,
            canceled=self.canceledAmount or 0,
            delivery_cycle=self.deliveryCycle,
            supplier_id=self.supplierId,
            book_product=self.bookProduct,
        )


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
