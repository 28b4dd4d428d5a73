"""Reading GET /events: a page of a tenant's scans as the spec's OrderEntryEventResponse.

The page comes from the feed index (ledger/adapters/feed_store.py): events strictly after
a timestamp, by (timestamp, recording order), pageNumber from 1 (docs/explanation/
semantics.md, "GET /events"). packedAmountInPc is computed here: equal to packedAmount
for piece units, else from the registered order entry's measure ("packedAmountInPc").
The entries come from the read side, which the caller hands in with how fresh it was.
The page is read on `reads`: connections for the reads that may lag the primary (a
replica's, when one is configured: docs/explanation/guarantees.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from ledger.adapters import feed_store
from ledger.adapters.replica import Connect
from ledger.domain.scan_fields import STORED, spec_dict
from ledger.domain.units import is_piece_unit, measure_unit, packed_in_pieces, same_dimension

MAX_PAGE_SIZE = 20_000
MAX_OFFSET = 2**62

Entries = dict[tuple[str, str], list[dict[str, Any]]]
F = TypeVar("F")
# (order, product) pairs -> their registered entries, and how fresh the read was.
EntriesOf = Callable[[str, set[tuple[str, str]]], tuple[Entries, F | None]]


def read_page(
    reads: Connect,
    entries_of: EntriesOf[F],
    tenant: str,
    after: datetime | None,
    page_number: int,
    page_size: int,
) -> tuple[list[dict[str, Any]], F | None]:
    """The feed items of page `page_number` (0 counts as 1) of `page_size` items (0: the
    most a page holds), and the freshness of the entries read for them (None: none read)."""
    size = page_size or MAX_PAGE_SIZE
    page = max(page_number, 1)
    if (page - 1) * size > MAX_OFFSET:
        # Past any feed there can be; SQL's OFFSET is a bigint (a 500, found by fuzzing).
        return [], None
    with reads() as conn:
        states = feed_store.events_after(conn, tenant, after, (page - 1) * size, size)
    # Only events in non-piece units need their order entry's measure.
    entries, freshness = entries_of(
        tenant,
        {(s["order_id"], s["product_id"]) for s in states if not is_piece_unit(s["unit"])},
    )
    return [feed_item(s, entries) for s in states], freshness


def feed_item(state: dict[str, Any], entries: Entries) -> dict[str, Any]:
    """A stored PackingEventRecorded as the spec's OrderEntryEventResponse.

    A field with no value (no deliveryCycle sent, packedAmountInPc unknown) is left out
    rather than null: the spec's schema types them string/integer/boolean without
    `nullable`, and the order documents already leave unknown figures out. Built field
    by field (no second pass to drop the nulls): a feed page renders 20,000 of these.
    """
    unit = state["unit"]
    packed = state["packed"]
    item = _always(state)
    if is_piece_unit(unit):
        item["packedAmountInPc"] = packed
    else:
        # The first of the product's entries whose measure converts from the scan's unit.
        entry = next(
            (
                e
                for e in entries.get((state["order_id"], state["product_id"]), ())
                if same_dimension(measure_unit(e), unit)
            ),
            None,
        )
        pieces = packed_in_pieces(packed, unit, entry)
        if pieces is not None:
            item["packedAmountInPc"] = pieces
    for key, field in _OPTIONAL_FIELDS:
        value = state[field]
        if value is not None:
            item[key] = value
    return item


# The item's fields by their spec names, each read from the stored state under the name
# the one table gives it (ledger/domain/scan_fields.py); `user` is the token's subject.
_ALWAYS = (
    "eventId",
    "productId",
    "orderNumber",
    "timestamp",
    "pickedAmount",
    "packedAmount",
    "canceledAmount",
)
_always = spec_dict((spec, STORED[spec]) for spec in _ALWAYS)
_OPTIONAL_FIELDS = (
    *((spec, STORED[spec]) for spec in ("deliveryCycle", "supplierId")),
    ("user", "user"),
    *((spec, STORED[spec]) for spec in ("site", "unit", "bookProduct")),
)
