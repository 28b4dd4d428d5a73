"""A scan's field names: the spec's, and the name each is kept under. The one table.

A scanner sends (and GET /events, the order's history and Emporix's feed show) the spec's
names (OrderEntryEventCreate, OrderEntryEventResponse); the domain's PackingEvent and the
stored PackingEventRecorded state name the same fields in Python's style. Every reader and
writer of a scan's names takes them from here: the request body (api/schemas.py), the
content hash (packing.py), the feed and history items (ledger/services/feed.py, story.py),
the import of Emporix's feed and the reconciliation (cutover.py), corrections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

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


def spec_dict(
    pairs: Iterable[tuple[str, str]],
    *,
    attributes: bool = False,
    unless_none: Iterable[tuple[str, str]] = (),
) -> Callable[[Any], dict[str, Any]]:
    """A function making {spec name: the value stored under its stored name} of a state
    (`s[stored]`), or of an object's attributes (`s.stored`) with `attributes`; the
    `unless_none` pairs are added only when their value is not None.

    Compiled once from the table into the code one would write by hand, and as fast: a
    feed page builds 20,000 items and every scan hashes its content, where a loop or a
    zip over the pairs costs two to four times as much as the dict literal.
    """
    pairs, optional = tuple(pairs), tuple(unless_none)
    for spec, stored in (*pairs, *optional):
        if not (spec.isidentifier() and stored.isidentifier()):
            raise ValueError(f"not a field name: {spec!r} / {stored!r}")
    read = "s.{}" if attributes else "s[{!r}]"
    body = ", ".join(f"{spec!r}: {read.format(stored)}" for spec, stored in pairs)
    lines = [f"    d = {{{body}}}"]
    for spec, stored in optional:
        lines += [f"    v = {read.format(stored)}", f"    if v is not None: d[{spec!r}] = v"]
    source = "def spec_dict(s):\n" + "\n".join([*lines, "    return d"]) + "\n"
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # built from field names only, checked above
    function: Callable[[Any], dict[str, Any]] = namespace["spec_dict"]
    return function
