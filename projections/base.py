"""What every projection is: a name, its tables, and a batch fold into those tables."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import orjson

from ledger.adapters.json_columns import register as register_json_columns
from ledger.domain.status import kind_of

# A rebuild may run without the store's module: json and jsonb columns through orjson.
register_json_columns()


class Recorded(NamedTuple):
    """One stored event as projections see it: position, kind and decoded fields.

    A NamedTuple rather than a frozen dataclass: a rebuild makes millions of them.
    """

    position: int
    kind: str
    data: dict[str, Any]


def decode_rows(rows: list[tuple[int, str, bytes]]) -> list[Recorded]:
    """(notification_id, topic, state) rows to Recorded, decoding JSON with orjson.

    This skips the library's object mapper on purpose: a rebuild decodes millions of
    events and needs only their fields (tests check both decoders agree).
    """
    loads = orjson.loads
    return [Recorded(pos, kind_of(topic), loads(state)) for pos, topic, state in rows]


class Accumulator(Protocol):
    """Folds events in memory; `flush` writes what changed since the last flush.

    The live runner folds and flushes every step, and keeps the accumulator for its next
    step while nobody else writes the view (projections/runner.py, `step`). A rebuild
    folds many batches and flushes rarely, so a row touched by thousands of events is
    written once, not once per batch.
    """

    def fold(self, curs: Any, events: list[Recorded]) -> None: ...

    def flush(self, curs: Any) -> None: ...

    def held(self) -> int:
        """How many rows' states it keeps in memory after a flush (a bound for keeping it)."""
        ...


class Projection(Protocol):
    """A read model kept from the event store."""

    name: str
    tables: tuple[str, ...]

    def accumulator(self, suffix: str = "") -> Accumulator:
        """An accumulator writing to the tables named `table + suffix`."""
        ...


def lock_key(name: str) -> int:
    """A stable advisory-lock key for a projection (same in every process)."""
    import hashlib

    digest = hashlib.sha256(f"projection:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
