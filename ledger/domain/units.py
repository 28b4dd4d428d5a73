"""packedAmountInPc: the packed amount in pieces (DESIGN.md decision 6). No I/O.

For piece units the amount already is pieces. For other units (grams, kilograms...)
the order entry's `unitPricingMeasure` says how much one piece holds (e.g. 500 GRM),
so pieces = amount / measure, rounded to the nearest whole piece. Without such a
measure the figure is unknown, and we say so (None) rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

PIECE_UNITS = frozenset({"H87", "C62", "PCE", "EA"})


def is_piece_unit(unit: str | None) -> bool:
    return unit is not None and unit.upper() in PIECE_UNITS


def packed_in_pieces(
    packed: int, unit: str | None, entry: Mapping[str, Any] | None = None
) -> int | None:
    """Pieces for `packed` in `unit`, given the order entry when one is registered."""
    if is_piece_unit(unit):
        return packed
    if not entry:
        return None
    measure = entry.get("unitPricingMeasure") or {}
    if not isinstance(measure, Mapping):
        return None
    measure_unit = measure.get("unitCode")
    try:
        per_piece = Decimal(str(measure.get("value")))
    except (InvalidOperation, TypeError):
        return None
    if per_piece <= 0 or measure_unit is None or unit is None:
        return None
    if str(measure_unit).upper() != unit.upper():
        return None
    return int((Decimal(packed) / per_piece).to_integral_value(rounding=ROUND_HALF_UP))
