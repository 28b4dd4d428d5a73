"""Packing events as scanners send them, and the decision to record one. No I/O.

A scanner retries after a timeout, so the same eventId arrives again: with the same
content it is a duplicate (answered 200, recorded once); with other content it is a
conflict (409). An event for a cancelled order is refused (409). The decision needs
only what the store already holds for those eventIds and orders, which the store
reads under its write lock and hands in here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import orjson


@dataclass(frozen=True)
class PackingEvent:
    """A validated packing event, normalised (amounts default to 0, time in UTC ms)."""

    tenant: str
    event_id: str
    order_id: str
    product_id: str
    unit: str
    event_time: str
    site: str
    picked: int = 0
    packed: int = 0
    canceled: int = 0
    delivery_cycle: str | None = None
    supplier_id: str | None = None
    book_product: bool | None = None

    def content_hash(self) -> bytes:
        """What "the same content" means for idempotency: every field the scanner sent."""
        # orjson serialises dataclasses natively (field by field, sorted): no asdict copy.
        return hashlib.sha256(orjson.dumps(self, option=orjson.OPT_SORT_KEYS)).digest()


def format_event_time(moment: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix: the one form times are stored and shown in."""
    # isoformat pads the year to four digits (strftime's %Y did not before 1000, which
    # PostgreSQL then refused: a 500 found by fuzzing) and is several times faster.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_event_time(text: str) -> datetime:
    """Parse ISO 8601 with `Z` or an offset (fractions optional); naive times are refused.

    The result is in UTC; a moment whose UTC form falls outside years 1-9999 (e.g.
    0001-01-01T00:00+01:00) is refused as out of range rather than overflowing later.
    """
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a time zone: `Z` or an offset such as +02:00")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp is out of range (years 1 to 9999 in UTC)") from None
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


class Verdict(Enum):
    RECORD = "record"
    DUPLICATE = "duplicate"  # same eventId, same content: already recorded
    CONFLICT = "conflict"  # same eventId, other content
    ORDER_CLOSED = "order_closed"  # the order is CANCELLED


@dataclass(frozen=True)
class Decision:
    event: PackingEvent
    verdict: Verdict


def decide(
    events: Sequence[PackingEvent],
    recorded_hashes: Mapping[tuple[str, str], bytes],
    closed_orders: set[tuple[str, str]],
    hashes: Sequence[bytes] | None = None,
) -> list[Decision]:
    """Decide each event in arrival order; earlier events of the batch count as recorded.

    `hashes` may carry the events' content hashes when the caller already has them.
    """
    seen = dict(recorded_hashes)
    decisions = []
    for i, ev in enumerate(events):
        key = (ev.tenant, ev.event_id)
        digest = hashes[i] if hashes is not None else ev.content_hash()
        if key in seen:
            verdict = Verdict.DUPLICATE if seen[key] == digest else Verdict.CONFLICT
        elif (ev.tenant, ev.order_id) in closed_orders:
            verdict = Verdict.ORDER_CLOSED
        else:
            verdict = Verdict.RECORD
            seen[key] = digest
        decisions.append(Decision(ev, verdict))
    return decisions


@dataclass(frozen=True)
class Outcome:
    """What happened to one submitted packing event."""

    event: PackingEvent
    verdict: Verdict
    position: int | None  # notification id when recorded now or before


@dataclass(frozen=True)
class Attribution:
    """Who sent a packing event: the token's subject and the request's saas-token."""

    user: str | None = None
    saas_token: str | None = None
