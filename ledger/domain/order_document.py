"""The pick-pack `Order` document: what clients may register, and how reads present it.

Pure functions, no I/O. Registration keeps the client's document except the fields the
service owns (packingStatus, assignees, holdingAreaNumber, packagingProducts and the live
entry counts): those are facts of the ledger, and a client re-sending an old GET body
must not overwrite them. Reads put the ledger's facts back in, computed live.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ledger.domain import counting
from ledger.domain.counting import Lines, drop_none
from ledger.domain.errors import InvalidDocument
from ledger.domain.inputs import MAX_AMOUNT, document_problem
from ledger.domain.units import PIECE, is_piece_unit

SERVER_OWNED = (
    "packingStatus",
    "assignees",
    "holdingAreaNumber",
    "packagingProducts",
    "unreconciledAmounts",
)
ENTRY_COUNTS = ("pickedCount", "packedCount", "canceledCount", "packedAmountInPc")


def normalize(document: Any, order_id: str) -> dict[str, Any]:
    """The document to register: server-owned fields dropped, the path's id written in.

    Entries must be objects with a productId (events are keyed by product) and, when
    given, a non-negative integer totalCount: the status rule depends on both.
    """
    if not isinstance(document, dict):
        raise InvalidDocument("body: must be an Order object")
    # Nothing hostile is stored: ids follow the identifier rule, texts the free-text rule.
    problem = document_problem(document)
    if problem:
        raise InvalidDocument(problem)
    doc = {k: v for k, v in document.items() if k not in SERVER_OWNED}
    doc["id"] = order_id
    entries = doc.get("entries", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise InvalidDocument("entries: must be an array")
    clean: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidDocument(f"entries[{i}]: must be an object")
        product = entry.get("productId")
        if not isinstance(product, str) or not product:
            raise InvalidDocument(f"entries[{i}].productId: must be a non-empty string")
        total = entry.get("totalCount", 0)
        if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= MAX_AMOUNT:
            raise InvalidDocument(
                f"entries[{i}].totalCount: must be an integer from 0 to {MAX_AMOUNT}"
            )
        entry_id = entry.get("entryId")
        if entry_id is not None and not isinstance(entry_id, str):
            raise InvalidDocument(f"entries[{i}].entryId: must be a string")
        clean.append({k: v for k, v in entry.items() if k not in ENTRY_COUNTS})
    doc["entries"] = clean
    for key in ("siteCode",):
        if key in doc and doc[key] is not None and not isinstance(doc[key], str):
            raise InvalidDocument(f"{key}: must be a string")
    return doc


def live_entries(document: Mapping[str, Any], lines: Lines) -> list[dict[str, Any]]:
    """The document's entries with their live counts: the line totals split over the
    entries (semantics.md, "A product in several entries", "Units are never mixed";
    ledger.domain.counting)."""
    entries = [e for e in document.get("entries") or [] if isinstance(e, dict)]
    return _present_entries(entries, counting.split(entries, lines))


def _present_entries(entries: list[dict[str, Any]], split: counting.Split) -> list[dict[str, Any]]:
    return [
        drop_none(
            {
                **entry,
                "pickedCount": c.picked,
                "packedCount": c.packed,
                "canceledCount": c.canceled,
                "packedAmountInPc": counting.entry_pieces(entry, c),
            }
        )
        for entry, c in zip(entries, split.entries, strict=True)
    ]


def present_order(row: Mapping[str, Any], lines: Lines) -> dict[str, Any]:
    """GET order: the registered document with the ledger's facts and live counts.

    `unreconciledAmounts` (an extension) lists, per product and unit, the amounts no
    entry counts (semantics.md, "Units are never mixed"): another unit that does not convert to a
    whole number of
    the entry's orderUnit, or a product the order does not list.
    """
    document = dict(row["document"] or {})
    entries = [e for e in document.get("entries") or [] if isinstance(e, dict)]
    split = counting.split(entries, lines)
    body = {
        **document,
        "id": row["order_id"],
        "entries": _present_entries(entries, split),
        "packingStatus": row["packing_status"],
        "packagingProducts": list(row["packaging"] or []),
        "holdingAreaNumber": row["holding_area_number"],
    }
    if row["assignees"]:
        body["assignees"] = list(row["assignees"])  # the spec says minItems 1: absent if none
    if split.unreconciled:
        body["unreconciledAmounts"] = split.unreconciled
    return drop_none(body)


def customer_name(document: Mapping[str, Any]) -> str | None:
    """The name a pack station shows: B2B `name`, else first and last name, else company."""
    customer = document.get("customer") or {}
    if not isinstance(customer, Mapping):
        return None
    if customer.get("name"):
        return str(customer["name"])
    full = " ".join(str(customer[k]) for k in ("firstName", "lastName") if customer.get(k))
    return full or (str(customer["companyName"]) if customer.get("companyName") else None)


def present_packlist_item(row: Mapping[str, Any], lines: Lines) -> dict[str, Any]:
    """One packlist row (spec `OrderList`), its totals never adding unlike units.

    productsTotal, productsPacked and productsCanceled add up the entries' figures only
    when every entry counts in one unit (all pieces, say); an order with entries in unlike
    units (pieces and grams) leaves them out. Always there, as extensions: `unitTotals`,
    the same figures per orderUnit, and `linesTotal` / `linesComplete`, the order's
    progress as entries resolved (the packingStatus rule) out of its entries
    (docs/explanation/semantics.md, "Progress").
    """
    document = dict(row["document"] or {})
    delivery = document.get("delivery") or {}
    entries = [e for e in document.get("entries") or [] if isinstance(e, dict)]
    split = counting.split(entries, lines)
    totals, complete = unit_totals(entries, split)
    item: dict[str, Any] = {
        "orderId": row["order_id"],
        "customerName": customer_name(document),
        "packingStatus": row["packing_status"],
    }
    if len({_unit_kind(t["unit"]) for t in totals}) <= 1:
        item["productsTotal"] = int(row["products_total"])
        item["productsPacked"] = int(row["products_packed"])
        item["productsCanceled"] = int(row["products_canceled"])
    item.update(
        {
            "assignees": list(row["assignees"] or []),
            "packagingProducts": list(row["packaging"] or []),
            "entries": _present_entries(entries, split),
            "holdingAreaNumber": row["holding_area_number"],
            "deliveryWindow": delivery.get("deliveryWindow")
            if isinstance(delivery, dict)
            else None,
            "linesTotal": len(entries),
            "linesComplete": complete,
            "unitTotals": totals,
        }
    )
    return drop_none(item)


def _unit_kind(unit: str) -> str:
    """Piece codes (H87, C62, PCE, EA) all count one piece: alike; any other unit is its own."""
    return "piece" if is_piece_unit(unit) else unit


def unit_totals(
    entries: list[dict[str, Any]], split: counting.Split
) -> tuple[list[dict[str, Any]], int]:
    """The entries' totalCount, packedCount and canceledCount added up per orderUnit, in
    the order the units first appear (the order's totals without adding unlike units),
    and how many entries are complete (the packingStatus rule, counting.resolved)."""
    by_unit: dict[str, dict[str, Any]] = {}
    complete = 0
    for entry, c in zip(entries, split.entries, strict=True):
        unit = str(entry.get("orderUnit") or PIECE)
        t = by_unit.get(unit)
        if t is None:
            t = by_unit[unit] = {
                "unit": unit,
                "totalCount": 0,
                "packedCount": 0,
                "canceledCount": 0,
            }
        t["totalCount"] += int(entry.get("totalCount") or 0)
        t["packedCount"] += c.packed
        t["canceledCount"] += c.canceled
        complete += counting.resolved(entry, c)
    return list(by_unit.values()), complete


def delivery_facts(document: dict[str, Any] | None) -> tuple[str | None, str | None, Any]:
    """siteCode, delivery date and delivery-window end: what the packlist sorts by."""
    if not document:
        return None, None, None
    delivery = document.get("delivery") or {}
    time_model = delivery.get("deliveryTimeModel") or {}
    window = delivery.get("deliveryWindow") or {}
    day = time_model.get("deliveryDate")
    end = window.get("deliveryTimeTo")
    end_at = None
    if isinstance(end, str):
        try:
            end_at = datetime.fromisoformat(end.replace("+0000", "+00:00"))
        except ValueError:
            end_at = None
    if day is None and end_at is not None:
        day = end_at.date().isoformat()
    return document.get("siteCode"), day, end_at


def holding_place(document: Mapping[str, Any] | None) -> tuple[str, str]:
    """Where an order's holding area is numbered: its site and delivery date (YYYY-MM-DD),
    each '' when the order does not say (docs/explanation/semantics.md, "Holding areas")."""
    site, day, _ = delivery_facts(dict(document) if document else None)
    try:
        day_key = date.fromisoformat(str(day)[:10]).isoformat() if day else ""
    except ValueError:
        day_key = ""
    return (site if isinstance(site, str) else ""), day_key
