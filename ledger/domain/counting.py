"""How a line's totals become each order entry's figures (docs/explanation/semantics.md,
"A product in several entries", "Units are never mixed").

The one place the counting rules live: the order detail, the packlist, the packingStatus
fold and the calculations body all read an order's figures through `split`. No I/O.

A line keeps its totals per unit (`Lines`: productId -> unit -> Amounts); amounts in
unlike units are never added. For each product:
- a unit that is the orderUnit of one of the product's entries counts for those entries;
- another unit counts, figure by figure, for the first of the product's entries (document
  order) whose orderUnit it converts to by an exact UN/ECE Rec. 20 factor, whenever that
  figure's total converts to a whole number of the orderUnit;
- the rest is unreconciled: shown on the order per product and unit. Packed pieces that
  no piece entry counts still feed the first non-piece entry's packedAmountInPc (semantics.md,
  "packedAmountInPc").
The amounts counted in one orderUnit are then split over the entries of that orderUnit in
document order: packed fills each up to its totalCount, then the next; cancelled fills
what packed left open, in the same order; picked fills up to totalCount on its own.
What exceeds the last entry stays on the last entry, so the entries always add up to
the line's totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ledger.domain.amounts import FIGURES, Amounts
from ledger.domain.units import PIECE, convert, is_piece_unit, packed_in_pieces, same_dimension

Lines = dict[str, dict[str, Amounts]]  # productId -> unit -> its amounts
# Lines as a view's JSON stores them (order_status.lines): productId -> unit -> [picked,
# packed, canceled].
StoredLines = dict[str, dict[str, list[int]]]
_ZERO = Amounts()  # a line nothing was scanned for (never changed)


@dataclass(slots=True)
class EntryCounts:
    picked: int = 0
    packed: int = 0
    canceled: int = 0
    extra_pieces: int = 0  # packed pieces feeding a non-piece entry's packedAmountInPc


@dataclass(frozen=True)
class Split:
    """Each entry's figures (document order) and what no entry counts."""

    entries: list[EntryCounts]
    unreconciled: list[dict[str, Any]] = field(default_factory=list)


def order_unit(entry: Mapping[str, Any]) -> str:
    """The unit an entry counts in: its orderUnit; without one, pieces."""
    return str(entry.get("orderUnit") or PIECE)


def add(lines: Lines, product: str, unit: str, picked: int, packed: int, canceled: int) -> None:
    """Add one scan's amounts (or a correction's signed deltas) to the line totals."""
    by_unit = lines.get(product)
    if by_unit is None:
        by_unit = lines[product] = {}
    t = by_unit.get(unit)
    if t is None:
        by_unit[unit] = Amounts(picked, packed, canceled)
    else:
        t.picked += picked
        t.packed += packed
        t.canceled += canceled


def lines_from_stored(stored: StoredLines | None) -> Lines:
    """A view's stored lines (JSON arrays) as Lines. (Both ways are written out, no call
    per line: a rebuild loads and saves every order state at each flush.)"""
    return {
        product: {unit: Amounts(*t) for unit, t in by_unit.items()}
        for product, by_unit in (stored or {}).items()
    }


def stored_lines(lines: Lines) -> StoredLines:
    """Lines as a view's JSON stores them: [picked, packed, canceled] arrays."""
    return {
        product: {unit: [t.picked, t.packed, t.canceled] for unit, t in by_unit.items()}
        for product, by_unit in lines.items()
    }


def fill(amount: int, capacities: Sequence[int]) -> list[int]:
    """Fill each capacity in order; what exceeds the last stays on the last."""
    out = []
    for cap in capacities:
        take = min(amount, max(cap, 0))
        out.append(take)
        amount -= take
    if out:
        out[-1] += amount
    return out


def split(
    entries: Sequence[Mapping[str, Any]], lines: Mapping[str, Mapping[str, Amounts]]
) -> Split:
    """The figures of every entry of an order, and its unreconciled amounts."""
    counts = [EntryCounts() for _ in entries]
    unreconciled: list[dict[str, Any]] = []
    by_product: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        by_product.setdefault(str(e.get("productId")), []).append(i)
    for product in sorted(lines):
        idx = by_product.get(product, ())
        units = [order_unit(entries[i]) for i in idx]
        pools: dict[str, Amounts] = {}  # orderUnit -> what counts in it
        for unit in sorted(lines[product]):
            totals = lines[product][unit]
            if unit in units:
                pools.setdefault(unit, Amounts()).plus(totals)
                continue
            target = next((u for u in units if same_dimension(unit, u)), None)
            left = Amounts()
            for figure in FIGURES:
                amount = getattr(totals, figure)
                converted: Fraction | None = (
                    convert(amount, unit, target) if target is not None else None
                )
                if converted is not None and converted.denominator == 1:
                    assert target is not None
                    pool = pools.setdefault(target, Amounts())
                    setattr(pool, figure, getattr(pool, figure) + int(converted))
                else:
                    setattr(left, figure, amount)
            if is_piece_unit(unit) and left.packed:
                first = next(
                    (i for i, u in zip(idx, units, strict=True) if not is_piece_unit(u)), None
                )
                if first is not None:
                    counts[first].extra_pieces += left.packed
            if left != _ZERO:
                unreconciled.append(
                    {
                        "productId": product,
                        "unit": unit,
                        "pickedAmount": left.picked,
                        "packedAmount": left.packed,
                        "canceledAmount": left.canceled,
                    }
                )
        for unit, pool in pools.items():
            members = [i for i, u in zip(idx, units, strict=True) if u == unit]
            if len(members) == 1:  # the usual line: what `fill` gives one entry, all of it
                c = counts[members[0]]
                c.picked, c.packed, c.canceled = pool.picked, pool.packed, pool.canceled
                continue
            caps = [int(entries[i].get("totalCount") or 0) for i in members]
            packed = fill(pool.packed, caps)
            canceled = fill(pool.canceled, [c - p for c, p in zip(caps, packed, strict=True)])
            picked = fill(pool.picked, caps)
            for k, i in enumerate(members):
                c = counts[i]
                c.picked, c.packed, c.canceled = picked[k], packed[k], canceled[k]
    return Split(counts, unreconciled)


def entry_pieces(entry: Mapping[str, Any], c: EntryCounts) -> int | None:
    """packedAmountInPc of an entry: its packed split in pieces, plus pieces fed to it."""
    own = packed_in_pieces(c.packed, order_unit(entry), entry)
    if own is None:
        # Unknown without a measure, unless only pieces were packed for it.
        return c.extra_pieces if c.packed == 0 and c.extra_pieces else None
    return own + c.extra_pieces


def resolved(entry: Mapping[str, Any], c: EntryCounts) -> bool:
    """The packingStatus rule per entry, on its split figures (semantics.md, "packingStatus")."""
    if entry.get("weightDependent"):
        return c.packed > 0
    return c.packed + c.canceled >= int(entry.get("totalCount") or 0)


def drop_none(value: dict[str, Any]) -> dict[str, Any]:
    """Nothing null leaves the service: a field without value is left out."""
    return {k: v for k, v in value.items() if v is not None}


def calculation_entries(
    entries: Sequence[Mapping[str, Any]] | None, lines: Lines
) -> list[dict[str, Any]]:
    """The calculations body's entries (semantics.md, "Recalculation"): one per order entry, its
    packed split
    in its orderUnit. `entries` None: an order known only from scans, one entry per
    product and unit, keyed by productId."""
    if entries is None:
        return [
            drop_none(
                {
                    "entryId": product,
                    "deliveredAmount": t.packed,
                    "deliveredAmountInPc": t.packed if is_piece_unit(unit) else None,
                    "unit": unit,
                }
            )
            for product in sorted(lines)
            for unit, t in sorted(lines[product].items())
        ]
    counts = split(entries, lines).entries
    return [
        drop_none(
            {
                "entryId": str(e.get("entryId") or e.get("productId")),
                "deliveredAmount": c.packed,
                "deliveredAmountInPc": entry_pieces(e, c),
                "unit": order_unit(e),
            }
        )
        for e, c in zip(entries, counts, strict=True)
    ]


class Plan:
    """What the status rule and the packlist figures need of one document, worked out
    once per document: a projection step applies them to every order it touches, for
    every scan (bench/rebuild.py measures it), and the general `split` is many times slower.

    A product whose entries all count in one unit, and whose line holds only that unit,
    is decided here directly (the fill of `split`, nothing converted, nothing left over);
    any other order takes the general `split`, so both always agree
    (tests/domain/test_counting.py holds them equal).
    """

    __slots__ = ("_simple", "entries", "total")

    def __init__(self, entries: Sequence[Mapping[str, Any]]) -> None:
        self.entries = entries
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for e in entries:
            groups.setdefault(str(e.get("productId")), []).append(e)
        self.total = sum(int(e.get("totalCount") or 0) for e in entries)
        # productId -> (unit, caps, weightDependent flags), or None: units differ
        self._simple: dict[str, tuple[str, tuple[int, ...], tuple[bool, ...]] | None] = {}
        for product, group in groups.items():
            units = {order_unit(e) for e in group}
            self._simple[product] = (
                (
                    units.pop(),
                    tuple(int(e.get("totalCount") or 0) for e in group),
                    tuple(bool(e.get("weightDependent")) for e in group),
                )
                if len(units) == 1
                else None
            )

    def _simple_totals(
        self, lines: Mapping[str, Mapping[str, Amounts]]
    ) -> list[tuple[tuple[int, ...], tuple[bool, ...], Amounts]] | None:
        """Per product: caps, flags and its one unit's totals; None: take `split`."""
        out: list[tuple[tuple[int, ...], tuple[bool, ...], Amounts]] = []
        for product, simple in self._simple.items():
            if simple is None:
                return None
            unit, caps, weights = simple
            by_unit = lines.get(product)
            if not by_unit:
                out.append((caps, weights, _ZERO))
            elif len(by_unit) == 1 and unit in by_unit:
                out.append((caps, weights, by_unit[unit]))
            else:
                return None
        return out

    def resolved(self, lines: Mapping[str, Mapping[str, Amounts]]) -> bool:
        """The packingStatus rule (semantics.md, "packingStatus") on the split: every entry
        resolved (False without entries)."""
        if not self.entries:
            return False
        for product, simple in self._simple.items():
            if simple is None:
                return self._resolved_by_split(lines)
            unit, caps, weights = simple
            by_unit = lines.get(product)
            if not by_unit:
                packed = canceled = 0
            elif len(by_unit) == 1 and unit in by_unit:
                t = by_unit[unit]
                packed, canceled = t.packed, t.canceled
            else:
                return self._resolved_by_split(lines)
            if len(caps) == 1:  # the usual case: one entry takes the whole line
                if (packed <= 0) if weights[0] else (packed + canceled < caps[0]):
                    return False
                continue
            p_split = fill(packed, caps)
            c_split = fill(canceled, [c - p for c, p in zip(caps, p_split, strict=True)])
            for cap, weighed, p, c in zip(caps, weights, p_split, c_split, strict=True):
                if (p <= 0) if weighed else (p + c < cap):
                    return False
        return True

    def _resolved_by_split(self, lines: Mapping[str, Mapping[str, Amounts]]) -> bool:
        counts = split(self.entries, lines).entries
        return all(resolved(e, c) for e, c in zip(self.entries, counts, strict=True))

    def counts(self, lines: Mapping[str, Mapping[str, Amounts]]) -> tuple[int, int, int]:
        """productsTotal, productsPacked, productsCanceled: the entries' split figures."""
        simple = self._simple_totals(lines)
        if simple is None:
            counts = split(self.entries, lines).entries
            return self.total, sum(c.packed for c in counts), sum(c.canceled for c in counts)
        # The split of one unit over a product's entries keeps its totals (the excess
        # stays on the last entry), so the sums are the line's.
        packed = sum(t.packed for _, _, t in simple)
        return self.total, packed, sum(t.canceled for _, _, t in simple)
