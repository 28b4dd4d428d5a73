"""The reference model: pickpack-ledger's counting rules, stated once in plain Python.

Written from docs/explanation/semantics.md (its fourteen numbered rules) and the Emporix
spec, NOT from the service's code: it imports nothing from ledger/, api/ or projections/.
The stateful test (tests/model/test_stateful.py) drives the real service over HTTP and
compares every answer with what this model says. Read it next to
docs/explanation/semantics.md ("The reference model" lists the choices taken here where the
rules left one open).

One `Ledger` is one tenant. Every command returns the HTTP status the service must answer;
the views (`order_detail`, `packlist`, `events`, `calculations`) return the JSON bodies the
service must serve. No I/O, no clock: timestamps are the scanner's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from tests.model.units import convert, is_piece, same_dimension


class Status(StrEnum):
    """packingStatus, as the spec's enum spells it (semantics.md, "packingStatus")."""

    INITIAL = "INITIAL"  # registered, nothing done yet
    IN_PROGRESS = "IN_PROGRESS"  # a scan or an assignee, not every entry resolved
    PRE_PACKED = "PRE_PACKED"  # every entry resolved
    PACKED = "PACKED"  # finished (or set by PATCH)
    CANCELLED = "CANCELLED"  # set by PATCH only; final


INITIAL, IN_PROGRESS, PRE_PACKED, PACKED, CANCELLED = (
    Status.INITIAL,
    Status.IN_PROGRESS,
    Status.PRE_PACKED,
    Status.PACKED,
    Status.CANCELLED,
)
AUTOMATIC_STATUSES = (INITIAL, IN_PROGRESS, PRE_PACKED)  # re-derived by later facts
FIGURES = ("picked", "packed", "canceled")
# The Order document's fields the service owns (ignored on input: semantics.md, "Orders").
SERVER_OWNED = ("packingStatus", "assignees", "holdingAreaNumber", "packagingProducts")
ENTRY_COUNTS = ("pickedCount", "packedCount", "canceledCount", "packedAmountInPc")


# -- scans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """One packing event as the scanner sent it (semantics.md, "Amounts are deltas").

    `content` is what decides "same content" for a retry (semantics.md, "Idempotency"):
    every field the scanner sent, absent amounts as 0, the timestamp in UTC milliseconds.
    Who sent it (user, saas-token) is not content.
    """

    event_id: str
    order_id: str
    product_id: str
    unit: str
    picked: int
    packed: int
    canceled: int
    timestamp: str  # already normalised: YYYY-MM-DDTHH:MM:SS.mmmZ
    site: str
    extra: tuple[tuple[str, Any], ...] = ()  # deliveryCycle, supplierId, bookProduct if sent
    user: str = "user-1"

    @classmethod
    def from_body(cls, body: Mapping[str, Any], user: str = "user-1") -> Scan:
        return cls(
            event_id=body["eventId"],
            order_id=body["orderNumber"],
            product_id=body["productId"],
            unit=body["unit"],
            picked=int(body.get("pickedAmount") or 0),
            packed=int(body.get("packedAmount") or 0),
            canceled=int(body.get("canceledAmount") or 0),
            timestamp=body["timestamp"],
            site=body["site"],
            extra=tuple(
                sorted(
                    (k, body[k])
                    for k in ("deliveryCycle", "supplierId", "bookProduct")
                    if body.get(k) is not None
                )
            ),
            user=user,
        )

    def content(self) -> tuple[Any, ...]:
        return (
            self.order_id,
            self.product_id,
            self.unit,
            self.picked,
            self.packed,
            self.canceled,
            self.timestamp,
            self.site,
            self.extra,
        )

    def amount(self, figure: str) -> int:
        return int(getattr(self, figure))


# -- a line's totals, per unit ("Units are never mixed") ------------------------------------

Totals = dict[str, int]  # figure -> amount
UnitTotals = dict[str, Totals]  # unit -> figures


def zero() -> Totals:
    return {f: 0 for f in FIGURES}


def line_totals(scans: Iterable[Scan]) -> dict[str, UnitTotals]:
    """productId -> unit -> summed figures, over the given (recorded) scans of one order."""
    lines: dict[str, UnitTotals] = {}
    for s in scans:
        t = lines.setdefault(s.product_id, {}).setdefault(s.unit, zero())
        for f in FIGURES:
            t[f] += s.amount(f)
    return lines


# -- the split over a product's entries, and units ("A product in several entries") ------


@dataclass
class EntryCounts:
    picked: int = 0
    packed: int = 0
    canceled: int = 0
    extra_pieces: int = 0  # piece amounts feeding a non-piece entry's packedAmountInPc


def _fill(amount: int, capacities: Sequence[int]) -> list[int]:
    """Shares of `amount` over entries in document order (semantics.md, "A product in
    several entries"): each entry but the last takes what fits in its open capacity
    (never less than none); the last takes whatever is left, so the shares always add
    up to the amount, and an excess stays on the last entry."""
    shares = []
    left = amount
    for position, capacity in enumerate(capacities):
        last = position == len(capacities) - 1
        share = left if last else min(left, max(capacity, 0))
        shares.append(share)
        left -= share
    return shares


def allocate(
    entries: Sequence[Mapping[str, Any]], lines: Mapping[str, UnitTotals]
) -> tuple[list[EntryCounts], list[dict[str, Any]]]:
    """Counts per order entry (document order), and the unreconciled amounts of the order.

    Per product and per unit of its line:
    - a unit that is the orderUnit of one of the product's entries counts for those entries;
    - another unit counts for the first of the product's entries (document order) whose
      orderUnit it converts to by an exact UN/ECE Rec. 20 factor, figure by figure, whenever
      that figure's total converts to a whole number of the orderUnit;
    - everything else is unreconciled, shown per product and unit. Packed pieces of a product
      without a piece entry also feed the first non-piece entry's packedAmountInPc
      ("packedAmountInPc").
    Each pool (the amounts counted in one orderUnit) is then split over the entries of that
    orderUnit, in document order: packed fills each up to totalCount, cancelled fills what
    packed left open, picked fills up to totalCount on its own; the excess stays on the last.
    """
    counts = [EntryCounts() for _ in entries]
    unreconciled: list[dict[str, Any]] = []
    by_product: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        by_product.setdefault(str(e.get("productId")), []).append(i)
    for product in sorted(lines):
        idx = by_product.get(product, [])
        units_of_entries = [order_unit(entries[i]) for i in idx]
        pools: dict[str, dict[str, Fraction]] = {}
        for unit in sorted(lines[product]):
            totals = lines[product][unit]
            left = zero()
            if unit in units_of_entries:
                pool = pools.setdefault(unit, {f: Fraction(0) for f in FIGURES})
                for f in FIGURES:
                    pool[f] += totals[f]
            else:
                target = next((u for u in units_of_entries if same_dimension(unit, u)), None)
                for f in FIGURES:
                    converted = convert(totals[f], unit, target) if target else None
                    if target is not None and converted is not None and converted.denominator == 1:
                        pool = pools.setdefault(target, {g: Fraction(0) for g in FIGURES})
                        pool[f] += converted
                    else:
                        left[f] = totals[f]
                if is_piece(unit) and left["packed"]:
                    first_non_piece = next(
                        (i for i, u in zip(idx, units_of_entries, strict=True) if not is_piece(u)),
                        None,
                    )
                    if first_non_piece is not None:
                        counts[first_non_piece].extra_pieces += left["packed"]
            if any(left.values()):
                unreconciled.append(
                    {
                        "productId": product,
                        "unit": unit,
                        "pickedAmount": left["picked"],
                        "packedAmount": left["packed"],
                        "canceledAmount": left["canceled"],
                    }
                )
        for unit, pool in pools.items():
            members = [i for i, u in zip(idx, units_of_entries, strict=True) if u == unit]
            caps = [int(entries[i].get("totalCount") or 0) for i in members]
            packed = _fill(int(pool["packed"]), caps)
            canceled = _fill(
                int(pool["canceled"]), [c - p for c, p in zip(caps, packed, strict=True)]
            )
            picked = _fill(int(pool["picked"]), caps)
            for k, i in enumerate(members):
                counts[i].packed, counts[i].canceled, counts[i].picked = (
                    packed[k],
                    canceled[k],
                    picked[k],
                )
    return counts, unreconciled


def half_up(x: Fraction) -> int:
    return int(
        (Decimal(x.numerator) / Decimal(x.denominator)).to_integral_value(rounding=ROUND_HALF_UP)
    )


def measure_of(entry: Mapping[str, Any]) -> tuple[str, Fraction] | None:
    """The entry's unitPricingMeasure (how much one piece holds), when usable."""
    m = entry.get("unitPricingMeasure")
    if not isinstance(m, Mapping):
        return None
    value, unit = m.get("value"), m.get("unitCode")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or not unit:
        return None
    return str(unit), Fraction(str(value))


def in_pieces(amount: int, unit: str, entry: Mapping[str, Any] | None) -> int | None:
    """Pieces (semantics.md, "packedAmountInPc") for `amount` in `unit`, or None when
    they cannot be known."""
    if is_piece(unit):
        return amount
    measure = measure_of(entry) if entry else None
    if measure is None:
        return None
    converted = convert(amount, unit, measure[0])
    if converted is None:
        return None
    return half_up(converted / measure[1])


def order_unit(entry: Mapping[str, Any]) -> str:
    """The unit an entry counts in: its orderUnit; without one, pieces (an order entry's
    amount counts items, as an import from the Order Service reads it)."""
    return str(entry.get("orderUnit") or "H87")


def entry_pieces(entry: Mapping[str, Any], c: EntryCounts) -> int | None:
    unit = order_unit(entry)
    own = in_pieces(c.packed, unit, entry)
    if own is None:
        # "packedAmountInPc": unknown without a measure, unless only pieces were packed for it.
        return c.extra_pieces if c.packed == 0 and c.extra_pieces else None
    return own + c.extra_pieces


# -- orders --------------------------------------------------------------------------------


@dataclass
class Order:
    order_id: str
    document: dict[str, Any] | None = None
    status: str | None = None  # None until registered
    active: bool = False  # a packing event, an assignee, a PATCH away from INITIAL, a finish
    assignees: list[dict[str, Any]] = field(default_factory=list)
    packaging: list[dict[str, Any]] = field(default_factory=list)
    holding_area_number: int | None = None
    last_finish_body: dict[str, Any] | None = None

    @property
    def registered(self) -> bool:
        return self.document is not None

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list((self.document or {}).get("entries") or [])


def normalize(document: Mapping[str, Any], order_id: str) -> dict[str, Any]:
    """The document as the service keeps it: path id wins, server-owned fields dropped."""
    doc = {k: v for k, v in document.items() if k not in SERVER_OWNED}
    doc["id"] = order_id
    doc["entries"] = [
        {k: v for k, v in e.items() if k not in ENTRY_COUNTS} for e in doc.get("entries") or []
    ]
    return doc


@dataclass
class Outcome:
    """What one command must answer."""

    status: int
    queued: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Ledger:
    """One tenant's ledger as the rules define it."""

    def __init__(self) -> None:
        self.scans: dict[str, Scan] = {}  # eventId -> the recorded scan
        self.recorded: list[Scan] = []  # recording order
        self.orders: dict[str, Order] = {}
        # per site and delivery date, from 1, in the order their orders first become
        # PACKED; a refusal uses none up
        self.holding_areas: dict[tuple[str, str], int] = {}
        self.sent: list[tuple[str, dict[str, Any]]] = []  # calculations, in queue order
        self.last_accepted: dict[str, dict[str, Any]] = {}  # for AUTOMATIC jobs

    def order(self, order_id: str) -> Order:
        return self.orders.setdefault(order_id, Order(order_id))

    # -- derived figures ------------------------------------------------------------------

    def lines(self, order_id: str) -> dict[str, UnitTotals]:
        return line_totals(s for s in self.recorded if s.order_id == order_id)

    def split(self, order_id: str) -> tuple[list[EntryCounts], list[dict[str, Any]]]:
        return allocate(self.order(order_id).entries, self.lines(order_id))

    def derived_status(self, o: Order) -> str:
        """The packingStatus rule, resolved per entry after the split (semantics.md,
        "packingStatus", "A product in several entries")."""
        if not o.active:
            return INITIAL
        entries = o.entries
        if not entries:
            return IN_PROGRESS
        counts, _ = self.split(o.order_id)
        for e, c in zip(entries, counts, strict=True):
            if e.get("weightDependent"):
                if c.packed <= 0:
                    return IN_PROGRESS
            elif c.packed + c.canceled < int(e.get("totalCount") or 0):
                return IN_PROGRESS
        return PRE_PACKED

    def _rederive(self, o: Order) -> None:
        if o.registered and o.status in (None, *AUTOMATIC_STATUSES):
            o.status = self.derived_status(o)

    # -- commands ------------------------------------------------------------------------

    def post_event(self, body: Mapping[str, Any], user: str = "user-1") -> Outcome:
        scan = Scan.from_body(body, user)
        known = self.scans.get(scan.event_id)
        # A retry is not a new write: answered before "Cancelled orders are closed".
        if known is not None:
            return Outcome(200 if known.content() == scan.content() else 409)
        o = self.order(scan.order_id)
        if o.status == CANCELLED:
            return Outcome(409)
        self.scans[scan.event_id] = scan
        self.recorded.append(scan)
        o.active = True
        self._rederive(o)
        return Outcome(200)

    def register(self, order_id: str, document: Mapping[str, Any]) -> Outcome:
        o = self.order(order_id)
        if o.status == CANCELLED:
            return Outcome(409)
        o.document = normalize(document, order_id)
        self._rederive(o)
        return Outcome(200)

    def _known(self, order_id: str) -> tuple[Order, int | None]:
        o = self.order(order_id)
        if o.status == CANCELLED:
            return o, 409
        if not o.registered:
            return o, 404
        return o, None

    def patch_status(self, order_id: str, status: str) -> Outcome:
        o, refused = self._known(order_id)
        if refused:
            return Outcome(refused)
        if status == o.status:
            return Outcome(200)  # "Commands are idempotent": nothing recorded or re-derived
        o.status = status
        if status != INITIAL:
            o.active = True
        if status == PACKED:
            self._take_holding_area(o)
        return Outcome(200)

    def _take_holding_area(self, o: Order) -> None:
        if o.holding_area_number is None:
            doc = o.document or {}
            site = doc.get("siteCode")
            day = _delivery_date(doc.get("delivery") or {})
            place = (site if isinstance(site, str) else "", day or "")
            self.holding_areas[place] = self.holding_areas.get(place, 0) + 1
            o.holding_area_number = self.holding_areas[place]

    def add_assignee(self, order_id: str, assignee: Mapping[str, Any], force: bool) -> Outcome:
        o, refused = self._known(order_id)
        if refused:
            return Outcome(refused)
        others = [a for a in o.assignees if a["id"] != assignee["id"]]
        if others and not force:
            return Outcome(400)
        if o.assignees == [dict(assignee)]:
            return Outcome(200)  # "Commands are idempotent": already assigned
        o.assignees = [dict(assignee)]  # force replaces; without force there was no other
        o.active = True
        self._rederive(o)
        return Outcome(200)

    def remove_assignee(self, order_id: str, assignee_id: str) -> Outcome:
        o = self.order(order_id)
        if o.status == CANCELLED:
            return Outcome(409)
        o.assignees = [a for a in o.assignees if a["id"] != assignee_id]
        return Outcome(204)

    def set_packaging(self, order_id: str, packaging: Sequence[Mapping[str, Any]]) -> Outcome:
        o, refused = self._known(order_id)
        if refused:
            return Outcome(refused)
        o.packaging = [dict(p) for p in packaging]
        return Outcome(200)

    def finish(self, order_id: str) -> Outcome:
        o, refused = self._known(order_id)
        if refused:
            return Outcome(refused)
        o.status = PACKED
        o.active = True
        o.assignees = []
        self._take_holding_area(o)
        body = self.calculation(order_id)
        if body == o.last_finish_body:
            return Outcome(200)  # "Commands are idempotent": same totals, nothing queued
        o.last_finish_body = body
        return Outcome(200, self._queue(order_id, body))

    def manual_job(self, order_ids: Sequence[str]) -> dict[str, str]:
        """Recalculation (semantics.md), MANUAL: each given order (once) is sent, or FAILURE
        when cancelled or unknown to the ledger (not registered, no packing event)."""
        outcome: dict[str, str] = {}
        for order_id in dict.fromkeys(order_ids):
            o = self.orders.get(order_id)
            has_scans = any(s.order_id == order_id for s in self.recorded)
            if o is None or o.status == CANCELLED or not (o.registered or has_scans):
                outcome[order_id] = "FAILURE"
                continue
            self._queue(order_id, self.calculation(order_id))
            outcome[order_id] = "SUCCESS"
        return outcome

    def automatic_job(self) -> dict[str, str]:
        """Recalculation (semantics.md), AUTOMATIC: every open order with packing events
        whose calculation differs from the last one the Order Service accepted (here: every
        one is accepted)."""
        outcome: dict[str, str] = {}
        for order_id in sorted({s.order_id for s in self.recorded}):
            o = self.order(order_id)
            if o.status == CANCELLED:
                continue
            body = self.calculation(order_id)
            if self.last_accepted.get(order_id) != body:
                self._queue(order_id, body)
                outcome[order_id] = "SUCCESS"
        return outcome

    def _queue(self, order_id: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        self.sent.append((order_id, body))
        self.last_accepted[order_id] = body
        return [(order_id, body)]

    # -- views -----------------------------------------------------------------------------

    def calculation(self, order_id: str) -> dict[str, Any]:
        """The calculations body (semantics.md, "Recalculation", split as "A product in
        several entries" and "Units are never mixed" say): one entry per order entry, the
        packed split in the entry's orderUnit, nothing null (a field without value is left
        out). An order the ledger does not know sends one entry per product and unit."""
        o = self.order(order_id)
        if not o.registered:
            lines = self.lines(order_id)
            return {
                "entries": [
                    _drop_none(
                        {
                            "entryId": product,
                            "deliveredAmount": t["packed"],
                            "deliveredAmountInPc": t["packed"] if is_piece(unit) else None,
                            "unit": unit,
                        }
                    )
                    for product in sorted(lines)
                    for unit, t in sorted(lines[product].items())
                ]
            }
        counts, _ = self.split(order_id)
        return {
            "entries": [
                _drop_none(
                    {
                        "entryId": e.get("entryId") or e.get("productId"),
                        "deliveredAmount": c.packed,
                        "deliveredAmountInPc": entry_pieces(e, c),
                        "unit": order_unit(e),
                    }
                )
                for e, c in zip(o.entries, counts, strict=True)
            ]
        }

    def live_entries(self, order_id: str) -> list[dict[str, Any]]:
        o = self.order(order_id)
        counts, _ = self.split(order_id)
        return [
            _drop_none(
                {
                    **e,
                    "pickedCount": c.picked,
                    "packedCount": c.packed,
                    "canceledCount": c.canceled,
                    "packedAmountInPc": entry_pieces(e, c),
                }
            )
            for e, c in zip(o.entries, counts, strict=True)
        ]

    def order_detail(self, order_id: str) -> dict[str, Any] | None:
        """GET /orders/{orderId}: None means 404 (not registered)."""
        o = self.orders.get(order_id)
        if o is None or not o.registered:
            return None
        _, unreconciled = self.split(order_id)
        assert o.document is not None
        body = {
            **o.document,
            "id": order_id,
            "entries": self.live_entries(order_id),
            "packingStatus": o.status,
            "packagingProducts": list(o.packaging),
            "holdingAreaNumber": o.holding_area_number,
            "assignees": list(o.assignees) or None,  # spec: minItems 1, so absent when none
            "unreconciledAmounts": unreconciled or None,
        }
        return _drop_none(body)

    def packlist(self, site: str, delivery_date: str) -> list[dict[str, Any]]:
        """GET /orders?siteCode&deliveryDate: open orders of that site and day, by delivery
        window end (none last), then orderId. Products* add up the entries' split figures."""
        rows = []
        for order_id, o in self.orders.items():
            doc = o.document
            if doc is None or o.status == CANCELLED or doc.get("siteCode") != site:
                continue
            delivery = doc.get("delivery") or {}
            if _delivery_date(delivery) != delivery_date:
                continue
            entries = self.live_entries(order_id)
            window = delivery.get("deliveryWindow")
            rows.append(
                (
                    (window or {}).get("deliveryTimeTo") is None,
                    (window or {}).get("deliveryTimeTo") or "",
                    order_id,
                    _drop_none(
                        {
                            "orderId": order_id,
                            "customerName": _customer_name(doc),
                            "packingStatus": o.status,
                            **_product_totals(entries),
                            "assignees": list(o.assignees),
                            "packagingProducts": list(o.packaging),
                            "entries": entries,
                            "holdingAreaNumber": o.holding_area_number,
                            "deliveryWindow": window,
                            # Decision 17: an order's progress is its lines resolved (the
                            # decision 5 rule per entry) out of its lines; totals per unit.
                            "linesTotal": len(entries),
                            "linesComplete": sum(_resolved(e) for e in entries),
                            "unitTotals": _unit_totals(entries),
                        }
                    ),
                )
            )
        return [r[-1] for r in sorted(rows, key=lambda r: r[:3])]

    def events(self, after: str | None = None) -> list[dict[str, Any]]:
        """GET /events: recorded scans with a timestamp strictly after `after`, by
        (timestamp, recording order); packedAmountInPc from the registered entries now."""
        picked = [
            (s.timestamp, i, s)
            for i, s in enumerate(self.recorded)
            if after is None or s.timestamp > after
        ]
        return [self._feed_item(s) for _, _, s in sorted(picked, key=lambda t: t[:2])]

    def _feed_item(self, s: Scan) -> dict[str, Any]:
        o = self.orders.get(s.order_id)
        entries = [e for e in (o.entries if o else []) if str(e.get("productId")) == s.product_id]
        measured = next(
            (
                e
                for e in entries
                if (m := measure_of(e)) is not None and same_dimension(m[0], s.unit)
            ),
            None,
        )
        pc = in_pieces(s.packed, s.unit, measured)
        return _drop_none(
            {
                "eventId": s.event_id,
                "productId": s.product_id,
                "orderNumber": s.order_id,
                "timestamp": s.timestamp,
                "pickedAmount": s.picked,
                "packedAmount": s.packed,
                "canceledAmount": s.canceled,
                "packedAmountInPc": pc,
                "user": s.user,
                "site": s.site,
                "unit": s.unit,
                **dict(s.extra),
            }
        )


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """Nothing null leaves the service (semantics.md, "Commands are idempotent, and nothing
    null is sent"): a field without value is left out."""
    return {k: v for k, v in d.items() if v is not None}


def _resolved(entry: Mapping[str, Any]) -> bool:
    if entry.get("weightDependent"):
        return int(entry["packedCount"]) > 0
    return int(entry["packedCount"]) + int(entry["canceledCount"]) >= int(
        entry.get("totalCount") or 0
    )


PIECE_CODES = frozenset({"H87", "C62", "PCE", "EA"})


def _product_totals(entries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Decision 17: products* add the entries' figures only when all count in one unit
    (the piece codes being one unit, a piece); unlike units are never added: left out."""
    kinds = {"piece" if order_unit(e).upper() in PIECE_CODES else order_unit(e) for e in entries}
    if len(kinds) > 1:
        return {}
    return {
        "productsTotal": sum(int(e.get("totalCount") or 0) for e in entries),
        "productsPacked": sum(e["packedCount"] for e in entries),
        "productsCanceled": sum(e["canceledCount"] for e in entries),
    }


def _unit_totals(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        unit = order_unit(e)
        t = out.setdefault(
            unit, {"unit": unit, "totalCount": 0, "packedCount": 0, "canceledCount": 0}
        )
        t["totalCount"] += int(e.get("totalCount") or 0)
        t["packedCount"] += e["packedCount"]
        t["canceledCount"] += e["canceledCount"]
    return list(out.values())


def _delivery_date(delivery: Mapping[str, Any]) -> str | None:
    model = delivery.get("deliveryTimeModel") or {}
    if model.get("deliveryDate"):
        return str(model["deliveryDate"])[:10]
    window = delivery.get("deliveryWindow") or {}
    return str(window["deliveryTimeTo"])[:10] if window.get("deliveryTimeTo") else None


def _customer_name(doc: Mapping[str, Any]) -> str | None:
    c = doc.get("customer") or {}
    if c.get("name"):
        return str(c["name"])
    full = " ".join(str(c[k]) for k in ("firstName", "lastName") if c.get(k))
    return full or (str(c["companyName"]) if c.get("companyName") else None)
