"""Units of measure for the reference model, from UN/ECE Recommendation 20 and the rules.

Written from Rec. 20 (Annex I: each common code with its name, the SI unit of its
quantity and the conversion factor to it) and docs/explanation/semantics.md ("Units are
never mixed": two units convert only when Rec. 20 gives them the same quantity and an
exact factor; "packedAmountInPc": H87, C62, PCE and EA are each one piece), not from the
service's table. The factors are written as Rec. 20 prints them (powers of ten of the SI
unit: kilogram, cubic metre, metre), so a slip in the service's table, whose bases are
different (litre for volume), shows up as a disagreement instead of being shared.
"""

from __future__ import annotations

from fractions import Fraction

# Rec. 20 common code -> (name, the SI unit's code, the factor to it as a power of ten)
REC20: dict[str, tuple[str, str, int]] = {
    "MGM": ("milligram", "KGM", -6),
    "GRM": ("gram", "KGM", -3),
    "KGM": ("kilogram", "KGM", 0),
    "TNE": ("tonne (metric ton)", "KGM", 3),
    "MLT": ("millilitre", "MTQ", -6),
    "CLT": ("centilitre", "MTQ", -5),
    "DLT": ("decilitre", "MTQ", -4),
    "LTR": ("litre", "MTQ", -3),
    "HLT": ("hectolitre", "MTQ", -1),
    "MTQ": ("cubic metre", "MTQ", 0),
    "MMT": ("millimetre", "MTR", -3),
    "CMT": ("centimetre", "MTR", -2),
    "DMT": ("decimetre", "MTR", -1),
    "MTR": ("metre", "MTR", 0),
    "KMT": ("kilometre", "MTR", 3),
}

# "one piece", each (semantics.md, "packedAmountInPc"): Rec. 20's piece (H87), one (C62)
# and each (EA), and PCE, the piece code scanners still send.
PIECES = ("H87", "C62", "PCE", "EA")


def quantity(unit: str | None) -> str | None:
    """What a unit measures: the code of its SI unit, "piece", or None (not convertible)."""
    if unit in PIECES:
        return "piece"
    known = REC20.get(unit or "")
    return known[1] if known else None


def in_si(unit: str) -> Fraction:
    """How many of its SI unit one `unit` is (1 for a piece)."""
    if unit in PIECES:
        return Fraction(1)
    return Fraction(10) ** REC20[unit][2]


def is_piece(unit: str | None) -> bool:
    return quantity(unit) == "piece"


def same_dimension(a: str | None, b: str | None) -> bool:
    return quantity(a) is not None and quantity(a) == quantity(b)


def convert(amount: int | Fraction, unit: str, target: str | None) -> Fraction | None:
    """`amount` of `unit` in `target`, exactly; None when they do not convert."""
    if target is None:
        return None
    if unit == target:
        return Fraction(amount)
    if not same_dimension(unit, target):
        return None
    return Fraction(amount) * in_si(unit) / in_si(target)
