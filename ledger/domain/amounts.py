"""A line's three amounts in one unit: picked, packed, canceled. The one shape of the triple.

Scans add to them, corrections add signed deltas, and they are compared (reconciling with
Emporix) and checked (a correction never takes one below zero): docs/explanation/
semantics.md, "Amounts are deltas". A NamedTuple: immutable, compared and unpacked as
the plain triple it replaces, with names where a reader needs one.
"""

from __future__ import annotations

from typing import NamedTuple


class Amounts(NamedTuple):
    picked: int = 0
    packed: int = 0
    canceled: int = 0

    def plus(self, picked: int, packed: int, canceled: int) -> Amounts:
        """These amounts with a scan's (or a correction's signed) amounts added."""
        return Amounts(self.picked + picked, self.packed + packed, self.canceled + canceled)
