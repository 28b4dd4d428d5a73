"""Reading an export back: each line of `pickpack events export` (an item of the change
feed) as the fact to record again. Pure: no I/O.

A line is `{"position", "recordedAt", "orderId", "type", "data"}` (ledger.domain.story
writes it). A scan becomes the PackingEvent its scanner sent, checked by the same rules
as a scan posted here (ledger.domain.cutover.from_feed_item), so its content hash is the
original's and the normal append's idempotency by eventId applies. Every other fact
becomes the event the order command once recorded, with its fields read back from their
public names. Each keeps the instant it was first recorded (`recordedAt`): an imported
history reads as the original did (the feed's `recordedAt`, an order `asOf` an instant),
and it is what tells a fact already imported from a new one (`same_fact`).

Who caused a fact (`user`) comes from the line (absent: unknown); what the export does
not carry is not invented: a scan's saas-token fingerprint is never in the feed, so
imported facts have none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from ledger.domain import events as ev
from ledger.domain.cutover import InvalidFeedItem, from_feed_item
from ledger.domain.packing import PackingEvent, parse_event_time
from ledger.domain.story import PUBLIC_TYPES, public_data, recorded_instant


class NotAnExportLine(ValueError):
    """A line that `pickpack events export` (or `pickpack archive`) would not write."""


@dataclass(frozen=True)
class ImportedScan:
    position: int
    recorded_at: datetime
    event: PackingEvent
    user: str | None


@dataclass(frozen=True)
class ImportedFact:
    position: int
    recorded_at: datetime
    order_id: str
    fact: ev.LedgerEvent  # recorded at `recorded_at` (its timestamp)
    data: dict[str, Any]  # the line's public fields, as the feed shows the fact


ImportItem = ImportedScan | ImportedFact

_CLASSES: dict[str, type[ev.LedgerEvent]] = {name: cls for cls, name in PUBLIC_TYPES.items()}


def _field(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NotAnExportLine(f"data.{name}: missing or of the wrong type")
    return value


def _optional(data: Mapping[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, kind):
        raise NotAnExportLine(f"data.{name}: of the wrong type")
    return value


class _Envelope(TypedDict):
    """What every imported fact takes from its line: the order, and when it was recorded."""

    tenant: str
    order_id: str
    timestamp: datetime


# Each kind of order fact from its public fields (the inverse of ledger.domain.story's
# _DATA) and, for the kinds that record one, the line's `user`.
_FACTS: dict[
    type[ev.LedgerEvent], Callable[[_Envelope, Mapping[str, Any], str | None], ev.LedgerEvent]
] = {
    ev.OrderRegistered: lambda e, d, user: ev.OrderRegistered(
        **e, document=_field(d, "order", dict)
    ),
    ev.PackingStatusChanged: lambda e, d, user: ev.PackingStatusChanged(
        **e, status=_field(d, "packingStatus", str), user=user
    ),
    ev.AssigneeAdded: lambda e, d, user: ev.AssigneeAdded(
        **e, assignee=_field(d, "assignee", dict), replaced=_field(d, "replaced", list)
    ),
    ev.AssigneeRemoved: lambda e, d, user: ev.AssigneeRemoved(
        **e, assignee_id=_field(d, "assigneeId", str)
    ),
    ev.PackagingChanged: lambda e, d, user: ev.PackagingChanged(
        **e, packaging=_field(d, "packagingProducts", list)
    ),
    ev.OrderFinished: lambda e, d, user: ev.OrderFinished(
        **e,
        recalculation_id=_field(d, "recalculationId", str),
        entries=_field(d, "entries", list),
        user=user,
    ),
    ev.OrderCancelled: lambda e, d, user: ev.OrderCancelled(**e, user=user),
    ev.HoldingAreaAssigned: lambda e, d, user: ev.HoldingAreaAssigned(
        **e, number=_field(d, "holdingAreaNumber", int)
    ),
    ev.CorrectionRecorded: lambda e, d, user: ev.CorrectionRecorded(
        **e,
        correction_id=_field(d, "correctionId", str),
        product_id=_field(d, "productId", str),
        picked=_field(d, "pickedAmount", int),
        packed=_field(d, "packedAmount", int),
        canceled=_field(d, "canceledAmount", int),
        unit=_field(d, "unit", str),
        reason=_field(d, "reason", str),
        user=user,
        saas_token=None,
    ),
}


def parse_line(tenant: str, line: Any) -> ImportItem:
    """The fact one export line records, for `tenant`; NotAnExportLine says what is wrong."""
    if not isinstance(line, dict):
        raise NotAnExportLine("a line must be a JSON object")
    position = line.get("position")
    if not isinstance(position, int) or isinstance(position, bool) or position < 1:
        raise NotAnExportLine("position: missing or not a positive integer")
    stamp = line.get("recordedAt")
    if not isinstance(stamp, str):
        raise NotAnExportLine("recordedAt: missing or not a string")
    try:
        recorded_at = parse_event_time(stamp)
    except ValueError as exc:
        raise NotAnExportLine(f"recordedAt: not an ISO 8601 date-time ({exc})") from None
    order_id = line.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise NotAnExportLine("orderId: missing or not a string")
    kind = line.get("type")
    cls = _CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(sorted(_CLASSES))
        raise NotAnExportLine(f"type: {kind!r} is not a fact the ledger records ({known})")
    data = line.get("data")
    if not isinstance(data, dict):
        raise NotAnExportLine("data: missing or not an object")
    user = line.get("user")
    if user is not None and not isinstance(user, str):
        raise NotAnExportLine("user: not a string")
    if cls is ev.PackingEventRecorded:
        try:
            event, _ = from_feed_item(tenant, {**data, "orderNumber": order_id})
        except InvalidFeedItem as exc:
            raise NotAnExportLine(f"data.{exc}") from None
        return ImportedScan(position, recorded_at, event, user)
    envelope = _Envelope(tenant=tenant, order_id=order_id, timestamp=recorded_at)
    return ImportedFact(position, recorded_at, order_id, _FACTS[cls](envelope, data, user), data)


def same_fact(item: ImportedFact, cls: type[ev.LedgerEvent] | None, state: dict[str, Any]) -> bool:
    """Whether a recorded fact (its class and stored state) is the one `item` imports:
    the same kind, recorded at the same instant, showing the same public fields."""
    return (
        cls is type(item.fact)
        and recorded_instant(state) == item.recorded_at
        and public_data(cls, state) == item.data
    )
