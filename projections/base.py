"""What every projection is: a name, its tables, and a batch fold into those tables."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import orjson

from ledger.adapters.compression import state_json
from ledger.adapters.json_columns import register as register_json_columns
from ledger.domain.events import LedgerEvent, event_class

# A rebuild may run without the store's module: json and jsonb columns through orjson.
register_json_columns()


class Recorded(NamedTuple):
    """One stored event as projections see it: position, event class and decoded fields.

    A NamedTuple rather than a frozen dataclass: a rebuild makes millions of them.
    """

    position: int
    cls: type[LedgerEvent] | None  # None: a topic the ledger never writes (ignored)
    # The stored state: a fold that dispatched on `cls` reads it as that class's TypedDict
    # (ledger/domain/event_data.py), e.g. `d: PackingEventRecordedData = e.data`.
    data: Any


def decode_rows(rows: list[tuple[int, str, bytes]]) -> list[Recorded]:
    """(notification_id, topic, state) rows to Recorded, decoding JSON with orjson.

    This skips the library's object mapper on purpose: a rebuild decodes millions of
    events and needs only their fields (tests check both decoders agree).
    """
    loads = orjson.loads
    classes = event_class
    json = state_json
    return [Recorded(pos, classes(topic), loads(json(state))) for pos, topic, state in rows]


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
        """Its table is empty and only it writes there (a rebuild's fresh table): its
        next flush may write rows without merging them into existing ones."""
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
