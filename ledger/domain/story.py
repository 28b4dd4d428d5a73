"""The order's story as clients read it: public names and fields of the recorded facts.

The change feed and an order's history show stored facts to integrators. They get
stable, readable type names (not the storage topics, which name Python classes) and
the facts' public fields in the API's camelCase; metadata such as the saas-token is
never shown. Pure: works on the stored states (plain JSON), no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger.domain import events as ev
from ledger.domain.packing import format_event_time
from ledger.domain.scan_fields import AMOUNTS, SCAN_FIELDS, spec_dict

# The public type of each kind of fact (docs/reference/api.md, "The order's story (extensions)").
PUBLIC_TYPES: dict[type[ev.LedgerEvent], str] = {
    ev.PackingEventRecorded: "PackingEventRecorded",
    ev.OrderRegistered: "OrderRegistered",
    ev.PackingStatusChanged: "PackingStatusChanged",
    ev.AssigneeAdded: "AssigneeAdded",
    ev.AssigneeRemoved: "AssigneeRemoved",
    ev.PackagingChanged: "PackagingChanged",
    ev.OrderFinished: "OrderFinished",
    ev.OrderCancelled: "OrderCancelled",
    ev.HoldingAreaAssigned: "HoldingAreaAssigned",
    ev.CorrectionRecorded: "CorrectionRecorded",
}


# A scan in the history: its fields by their spec names, but the order (the story's own).
_scan = spec_dict(pair for pair in SCAN_FIELDS if pair[0] != "orderNumber")


def _correction(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "correctionId": s["correction_id"],
        "productId": s["product_id"],
        **{spec: s[stored] for spec, stored in AMOUNTS},
        "unit": s["unit"],
        "reason": s["reason"],
    }


_DATA: dict[type[ev.LedgerEvent], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ev.PackingEventRecorded: _scan,
    ev.OrderRegistered: lambda s: {"order": s["document"]},
    ev.PackingStatusChanged: lambda s: {"packingStatus": s["status"]},
    ev.AssigneeAdded: lambda s: {"assignee": s["assignee"], "replaced": s["replaced"]},
    ev.AssigneeRemoved: lambda s: {"assigneeId": s["assignee_id"]},
    ev.PackagingChanged: lambda s: {"packagingProducts": s["packaging"]},
    ev.OrderFinished: lambda s: {
        "recalculationId": s["recalculation_id"],
        "entries": s["entries"],
    },
    ev.OrderCancelled: lambda s: {"packingStatus": "CANCELLED"},
    ev.HoldingAreaAssigned: lambda s: {"holdingAreaNumber": s["number"]},
    ev.CorrectionRecorded: _correction,
}


def public_type(cls: type[ev.LedgerEvent] | None) -> str:
    return PUBLIC_TYPES[cls] if cls is not None else "Unknown"


def public_data(cls: type[ev.LedgerEvent] | None, state: dict[str, Any]) -> dict[str, Any]:
    """The fact's public fields (camelCase); never the saas-token."""
    build = _DATA.get(cls) if cls is not None else None
    return build(state) if build is not None else {}


def recorded_at(state: dict[str, Any]) -> str:
    """When the fact was recorded (the store's clock, UTC), shown as every time is: with
    three fraction digits and `Z` (an as-of read at this instant includes the fact)."""
    return format_event_time(recorded_instant(state))


def recorded_instant(state: dict[str, Any]) -> datetime:
    """When a stored fact was recorded, to the millisecond (as it is shown)."""
    stamp = state["timestamp"]
    at = datetime.fromisoformat(stamp["_data_"] if isinstance(stamp, dict) else stamp)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def change_item(
    position: int, cls: type[ev.LedgerEvent] | None, state: dict[str, Any]
) -> dict[str, Any]:
    """One item of the change feed (`user`: who caused it, when known, as in the history;
    so an export replays with its attribution: ledger.domain.replay)."""
    return {
        "position": position,
        "recordedAt": recorded_at(state),
        "orderId": state.get("order_id"),
        "type": public_type(cls),
        "user": state.get("user"),
        "data": public_data(cls, state),
    }


def history_item(
    position: int, cls: type[ev.LedgerEvent] | None, state: dict[str, Any]
) -> dict[str, Any]:
    """One fact of an order's history (its `user`: who caused it, when known)."""
    return {
        "position": position,
        "recordedAt": recorded_at(state),
        "type": public_type(cls),
        "user": state.get("user"),
        "data": public_data(cls, state),
    }
