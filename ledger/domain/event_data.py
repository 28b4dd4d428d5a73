"""Each recorded fact's stored state, as the folds read it: one TypedDict per event class.

A fold gets a fact as its class and its decoded state (a dict: building the event object
for each of a rebuild's million facts would cost more than the fold). Typed here, a fold's
`ev["product_id"]` is checked by mypy against the fact's fields, and
tests/domain/test_event_handlers.py holds each TypedDict to its event class's fields
(ledger/domain/events.py), so renaming a field fails before it runs. `timestamp` (when
it was recorded) is in every state too; no fold reads it.
"""

from __future__ import annotations

from typing import Any, TypedDict


class FactData(TypedDict):
    tenant: str
    order_id: str


class PackingEventRecordedData(FactData):
    event_id: str
    product_id: str
    delivery_cycle: str | None
    picked: int
    packed: int
    canceled: int
    supplier_id: str | None
    unit: str
    event_time: str
    site: str
    book_product: bool | None
    user: str | None
    saas_token: str | None


class OrderRegisteredData(FactData):
    document: dict[str, Any]


class PackingStatusChangedData(FactData):
    status: str
    user: str | None


class AssigneeAddedData(FactData):
    assignee: dict[str, Any]
    replaced: list[str]


class AssigneeRemovedData(FactData):
    assignee_id: str


class PackagingChangedData(FactData):
    packaging: list[dict[str, Any]]


class OrderCancelledData(FactData):
    user: str | None


class OrderFinishedData(FactData):
    recalculation_id: str
    entries: list[dict[str, Any]]
    user: str | None


class HoldingAreaAssignedData(FactData):
    number: int


class CorrectionRecordedData(FactData):
    correction_id: str
    product_id: str
    picked: int
    packed: int
    canceled: int
    unit: str
    reason: str
    user: str | None
    saas_token: str | None


# What a line's sums read: a scan's or a correction's (the same names, on purpose).
LineFactData = PackingEventRecordedData | CorrectionRecordedData
