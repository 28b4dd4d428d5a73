"""What every projection is: a name, its tables, and a batch fold into those tables."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, Protocol, cast

import orjson

from ledger.adapters.compression import states_json
from ledger.adapters.json_columns import register as register_json_columns
from ledger.domain.events import EVENT_CLASSES, LedgerEvent, restored_all

# A rebuild may run without the store's module: json and jsonb columns through orjson.
register_json_columns()


class Recorded(NamedTuple):
    """One stored event as projections see it: its position and the fact, restored from
    its stored state as its event class (ledger.domain.events.restored).

    A NamedTuple rather than a frozen dataclass: a rebuild makes millions of them.
    """

    position: int
    event: LedgerEvent | None  # None: a topic the ledger never writes (ignored)


def decode_rows(rows: list[tuple[int, str, bytes]], shared: tuple[str, ...] = ()) -> list[Recorded]:
    """(notification_id, topic, state) rows to Recorded, decoding JSON with orjson.

    This skips the library's object mapper on purpose: a rebuild decodes millions of
    events and its folds read only their own fields, never the envelope (tests check both
    decoders agree). Each step runs over the whole batch at C speed where it can (no
    Python call per row): this is most of a rebuild's time besides the folds.

    `shared`: fields whose text values are interned (a rebuild's accumulators keep them
    in their rows' keys: one shared copy instead of one per event).
    """
    loads = orjson.loads
    states = [loads(j) for j in states_json([r[2] for r in rows])]
    if shared:
        intern = sys.intern
        for state in states:
            for name in shared:
                value = state.get(name)
                if type(value) is str:
                    state[name] = intern(value)
    classes = EVENT_CLASSES.get
    events = restored_all([classes(r[1]) for r in rows], states)
    return list(map(_recorded, zip([r[0] for r in rows], events, strict=True)))


# Recorded from a (position, event) pair, made by tuple.__new__ directly: the NamedTuple's
# own constructor is a Python function, called once per event.
_recorded = cast(
    Callable[[tuple[int, LedgerEvent | None]], Recorded], partial(tuple.__new__, Recorded)
)


class Accumulator(Protocol):
    """Folds events in memory; `flush` writes what changed since the last flush.

    The live runner folds and flushes every step, and keeps the accumulator for its next
    step while nobody else writes the view (projections/runner.py, `step`). A rebuild
    folds many batches and flushes rarely, so a row touched by thousands of events is
    written once, not once per batch.
    """

    def fold(self, curs: Any, events: list[Recorded]) -> None: ...

    def flush(self, curs: Any) -> None: ...

    def start_empty(self) -> None:
        """Forget what it holds: its table has no row of what it folds next, and only it
        writes there (a rebuild's fresh table, or a rebuild's next slice of orders:
        projections/rebuild_slices.py). Its next flush may write rows without merging
        them into existing ones, and it folds without loading rows first."""
        ...

    def held(self) -> int:
        """How many rows' states it keeps in memory after a flush (a bound for keeping it)."""
        ...

    def rows(self) -> int:
        """Rows folded since the last flush, in line_totals rows' worth of memory: what
        a flush writes, then lets go or keeps within `held`'s own bound (a rebuild
        flushes once their sum passes its bound)."""
        ...


class Projection(Protocol):
    """A read model kept from the event store."""

    name: str
    tables: tuple[str, ...]
    # The event classes it folds, and those it ignores on purpose: between them, every
    # class of ledger.domain.events (tests/domain/test_event_handlers.py).
    handles: frozenset[type[LedgerEvent]]
    ignores: frozenset[type[LedgerEvent]]

    def accumulator(self, suffix: str = "") -> Accumulator:
        """An accumulator writing to the tables named `table + suffix`."""
        ...


def lock_key(name: str) -> int:
    """A stable advisory-lock key for a projection (same in every process)."""
    import hashlib

    digest = hashlib.sha256(f"projection:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
