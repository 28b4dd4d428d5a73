"""The pick-pack `Order` document: what clients may register, and how reads present it.

Pure functions, no I/O. Registration keeps the client's document except the fields the
service owns (packingStatus, assignees, holdingAreaNumber, packagingProducts and the live
entry counts): those are facts of the ledger, and a client re-sending an old GET body
must not overwrite them. Reads put the ledger's facts back in, computed live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.domain import counting
from ledger.domain.counting import Lines, drop_none
from ledger.domain.errors import InvalidDocument
from ledger.domain.inputs import MAX_AMOUNT, document_problem

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
    """One packlist row (spec `OrderList`)."""
    document = dict(row["document"] or {})
    delivery = document.get("delivery") or {}
    item = {
        "orderId": row["order_id"],
        "customerName": customer_name(document),
        "packingStatus": row["packing_status"],
        "productsTotal": int(row["products_total"]),
        "productsPacked": int(row["products_packed"]),
        "productsCanceled": int(row["products_canceled"]),
        "assignees": list(row["assignees"] or []),
        "packagingProducts": list(row["packaging"] or []),
        "entries": live_entries(document, lines),
        "holdingAreaNumber": row["holding_area_number"],
        "deliveryWindow": delivery.get("deliveryWindow") if isinstance(delivery, dict) else None,
    }
    return drop_none(item)
