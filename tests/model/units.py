"""Units of measure: UN/ECE Recommendation 20 codes and their exact factors.

Only units whose conversion is exact (a rational factor) are listed: mass, volume, length
and the piece codes. Two units convert into each other when they share a dimension; the
result is a Fraction, so "is it a whole number of the orderUnit?" is an exact question.
"""

from __future__ import annotations

from fractions import Fraction

# code -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, Fraction]] = {
    # mass, base KGM
    "MGM": ("mass", Fraction(1, 1_000_000)),
    "GRM": ("mass", Fraction(1, 1000)),
    "KGM": ("mass", Fraction(1)),
    "TNE": ("mass", Fraction(1000)),
    # volume, base LTR
    "MLT": ("volume", Fraction(1, 1000)),
    "CLT": ("volume", Fraction(1, 100)),
    "DLT": ("volume", Fraction(1, 10)),
    "LTR": ("volume", Fraction(1)),
    "HLT": ("volume", Fraction(100)),
    "MTQ": ("volume", Fraction(1000)),
    # length, base MTR
    "MMT": ("length", Fraction(1, 1000)),
    "CMT": ("length", Fraction(1, 100)),
    "DMT": ("length", Fraction(1, 10)),
    "MTR": ("length", Fraction(1)),
    "KMT": ("length", Fraction(1000)),
    # pieces (decision 6: H87, C62, PCE, EA are all "one piece")
    "H87": ("piece", Fraction(1)),
    "C62": ("piece", Fraction(1)),
    "PCE": ("piece", Fraction(1)),
    "EA": ("piece", Fraction(1)),
}


def is_piece(unit: str | None) -> bool:
    return unit is not None and UNITS.get(unit.upper(), ("", 0))[0] == "piece"


def same_dimension(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    da, db = UNITS.get(a.upper()), UNITS.get(b.upper())
    return da is not None and db is not None and da[0] == db[0]


def convert(amount: int | Fraction, unit: str, target: str | None) -> Fraction | None:
    """`amount` of `unit` in `target`, exactly; None when they do not convert."""
    if target is None:
        return None
    if unit == target:
        return Fraction(amount)
    if not same_dimension(unit, target):
        return None
    return Fraction(amount) * UNITS[unit.upper()][1] / UNITS[target.upper()][1]
