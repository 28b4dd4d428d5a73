"""A scan's field names: the spec's, and the name each is kept under. The one table.

A scanner sends (and GET /events, the order's history and Emporix's feed show) the spec's
names (OrderEntryEventCreate, OrderEntryEventResponse); the domain's PackingEvent and the
stored PackingEventRecorded state name the same fields in Python's style. Every reader and
writer of a scan's names takes them from here: the request body (api/schemas.py), the
content hash (packing.py), the feed and history items (ledger/services/feed.py, story.py),
the import of Emporix's feed and the reconciliation (cutover.py), corrections.
"""

from __future__ import annotations

# (spec name, stored name), in the spec's order of OrderEntryEventCreate.
SCAN_FIELDS: tuple[tuple[str, str], ...] = (
    ("eventId", "event_id"),
    ("orderNumber", "order_id"),
    ("productId", "product_id"),
    ("deliveryCycle", "delivery_cycle"),
    ("pickedAmount", "picked"),
    ("packedAmount", "packed"),
    ("canceledAmount", "canceled"),
    ("supplierId", "supplier_id"),
    ("unit", "unit"),
    ("timestamp", "event_time"),
    ("site", "site"),
    ("bookProduct", "book_product"),
)

STORED = dict(SCAN_FIELDS)  # spec name -> stored name
SPEC = {stored: spec for spec, stored in SCAN_FIELDS}  # stored name -> spec name

# The three amounts (semantics.md, "Amounts are deltas"), picked, packed, canceled.
AMOUNTS: tuple[tuple[str, str], ...] = tuple(
    (spec, stored) for spec, stored in SCAN_FIELDS if stored in ("picked", "packed", "canceled")
)
# What a scanner may leave out without a default of its own (an absent amount is 0).
OPTIONAL: tuple[tuple[str, str], ...] = tuple(
    (spec, STORED[spec]) for spec in ("deliveryCycle", "supplierId", "bookProduct")
)
# Always sent, and part of "the same content" (semantics.md, "Idempotency").
REQUIRED: tuple[tuple[str, str], ...] = tuple(pair for pair in SCAN_FIELDS if pair not in OPTIONAL)
