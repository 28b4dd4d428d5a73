"""Units of measure: UN/ECE Recommendation 20 codes, exact conversion, pieces. No I/O.

Amounts in unlike units are never added (docs/explanation/semantics.md, "Units are never mixed").
Two units convert into
each other only when Rec. 20 gives them the same dimension and an exact factor (mass,
volume, length, and the piece codes, which are all "one piece"); the result is a
Fraction, so "is this a whole number of the entry's orderUnit?" is an exact question.

packedAmountInPc (semantics.md, "packedAmountInPc"): for piece units the amount already is pieces.
For other
units the order entry's `unitPricingMeasure` says how much one piece holds (e.g. 500
GRM), so pieces = amount (converted exactly to the measure's unit) / measure, rounded
half up to a whole piece. Without a usable measure the figure is unknown (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

PIECE_UNITS = frozenset({"H87", "C62", "PCE", "EA"})
PIECE = "H87"  # the unit an entry without orderUnit counts in

# code -> (dimension, factor to the dimension's base unit), exact factors only.
UNITS: dict[str, tuple[str, Fraction]] = {
    "MGM": ("mass", Fraction(1, 1_000_000)),
    "GRM": ("mass", Fraction(1, 1000)),
    "KGM": ("mass", Fraction(1)),
    "TNE": ("mass", Fraction(1000)),
    "MLT": ("volume", Fraction(1, 1000)),
    "CLT": ("volume", Fraction(1, 100)),
    "DLT": ("volume", Fraction(1, 10)),
    "LTR": ("volume", Fraction(1)),
    "HLT": ("volume", Fraction(100)),
    "MTQ": ("volume", Fraction(1000)),
    "MMT": ("length", Fraction(1, 1000)),
    "CMT": ("length", Fraction(1, 100)),
    "DMT": ("length", Fraction(1, 10)),
    "MTR": ("length", Fraction(1)),
    "KMT": ("length", Fraction(1000)),
    **{code: ("piece", Fraction(1)) for code in PIECE_UNITS},
}


def is_piece_unit(unit: str | None) -> bool:
    return unit is not None and unit.upper() in PIECE_UNITS


def same_dimension(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    da, db = UNITS.get(a.upper()), UNITS.get(b.upper())
    return da is not None and db is not None and da[0] == db[0]


def convert(amount: int | Fraction, unit: str, target: str) -> Fraction | None:
    """`amount` of `unit` expressed in `target`, exactly; None when they do not convert."""
    if unit == target:
        return Fraction(amount)
    if not same_dimension(unit, target):
        return None
    return Fraction(amount) * UNITS[unit.upper()][1] / UNITS[target.upper()][1]


def _measure(entry: Mapping[str, Any]) -> tuple[str, Fraction] | None:
    """The entry's unitPricingMeasure (how much one piece holds), when usable."""
    measure = entry.get("unitPricingMeasure")
    if not isinstance(measure, Mapping):
        return None
    value, unit = measure.get("value"), measure.get("unitCode")
    if isinstance(value, bool) or not isinstance(value, int | float | str) or not unit:
        return None
    try:
        per_piece = Fraction(str(value))  # a number, or a numeric text such as "500"
    except (ValueError, OverflowError):
        return None
    if per_piece <= 0:
        return None
    return str(unit), per_piece


def measure_unit(entry: Mapping[str, Any] | None) -> str | None:
    """The unit of the entry's usable unitPricingMeasure, if any."""
    measure = _measure(entry) if entry else None
    return measure[0] if measure else None


def packed_in_pieces(
    packed: int, unit: str | None, entry: Mapping[str, Any] | None = None
) -> int | None:
    """Pieces for `packed` in `unit`, given the order entry when one is registered."""
    if is_piece_unit(unit):
        return packed
    measure = _measure(entry) if entry else None
    if measure is None or unit is None:
        return None
    converted = convert(packed, unit, measure[0])
    if converted is None:
        return None
    pieces = converted / measure[1]
    return int(
        (Decimal(pieces.numerator) / Decimal(pieces.denominator)).to_integral_value(
            rounding=ROUND_HALF_UP
        )
    )
