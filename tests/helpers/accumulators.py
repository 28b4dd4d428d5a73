"""A projection accumulator that passes everything on to another, for tests to watch or
break one step of a rebuild. One place, so a method the protocol gains is passed on by
every wrapper (a wrapper that missed `start_empty` once rebuilt from the wrong state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.base import Accumulator, Recorded


@dataclass
class Delegating:
    inner: Accumulator

    def fold(self, curs: Any, events: list[Recorded]) -> None:
        self.inner.fold(curs, events)

    def flush(self, curs: Any) -> None:
        self.inner.flush(curs)

    def start_empty(self) -> None:
        self.inner.start_empty()

    def held(self) -> int:
        return self.inner.held()

    def rows(self) -> int:
        return self.inner.rows()
