"""A line's three amounts in one unit: picked, packed, canceled. The one shape of the triple.

Scans add to them, corrections add signed deltas, and they are split over entries
(ledger.domain.counting), compared (reconciling with Emporix) and checked (a correction
never takes one below zero): docs/explanation/semantics.md, "Amounts are deltas". Every
reader and writer of the triple uses this class: the order state's lines, the
line_totals projection's sums, an order command's line sums, the reconciliation's totals.

Mutable, with slots: the folds add a scan into a line's amounts in place, millions of
times in a rebuild, and a line holds one small object. Views store the amounts as the
JSON array [picked, packed, canceled], the form they always had
(ledger.domain.counting.lines_from_stored, stored_lines).
"""

from __future__ import annotations

from dataclasses import dataclass

# The figures, by the names a stored fact and this class give them.
FIGURES = ("picked", "packed", "canceled")


@dataclass(slots=True)
class Amounts:
    picked: int = 0
    packed: int = 0
    canceled: int = 0

    def add(self, picked: int, packed: int, canceled: int) -> None:
        """Add a scan's amounts (or a correction's signed deltas), in place."""
        self.picked += picked
        self.packed += packed
        self.canceled += canceled

    def plus(self, other: Amounts) -> None:
        """Add another line's amounts, in place."""
        self.picked += other.picked
        self.packed += other.packed
        self.canceled += other.canceled

    def as_list(self) -> list[int]:
        """[picked, packed, canceled]: the amounts in the order a view's JSON stores them."""
        return [self.picked, self.packed, self.canceled]
