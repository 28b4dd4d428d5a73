"""What every projection is: a name, its tables, and a batch fold into those tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ledger.status import kind_of


@dataclass(frozen=True)
class Recorded:
    """One stored event as projections see it: position, kind and decoded fields."""

    position: int
    kind: str
    data: dict[str, Any]


def decode_rows(rows: list[tuple[int, str, bytes]]) -> list[Recorded]:
    """(notification_id, topic, state) rows to Recorded, decoding JSON with orjson.

    This skips the library's object mapper on purpose: a rebuild decodes millions of
    events and needs only their fields (tests check both decoders agree).
    """
    return [Recorded(pos, kind_of(topic), orjson.loads(state)) for pos, topic, state in rows]


class Projection(Protocol):
    """A read model kept from the event store."""

    name: str
    tables: tuple[str, ...]

    def apply(self, curs: Any, events: list[Recorded], suffix: str = "") -> None:
        """Fold `events` (in recording order) into the tables named `table + suffix`."""
        ...


def lock_key(name: str) -> int:
    """A stable advisory-lock key for a projection (same in every process)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"projection:{name}".encode()).digest()[:8], "big", signed=True)
