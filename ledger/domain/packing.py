"""Packing events as scanners send them, and the decision to record one. No I/O.

A scanner retries after a timeout, so the same eventId arrives again: with the same
content it is a duplicate (answered 200, recorded once); with other content it is a
conflict (409). An event for a cancelled order is refused (409). The decision needs
only what the store already holds for those eventIds and orders, which the store
reads under its write lock and hands in here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import orjson

from ledger.domain.scan_fields import OPTIONAL, REQUIRED, spec_dict


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
        """What "the same content" means for idempotency: every field the scanner sent.

        The hash is over the request's fields BY THEIR SPEC NAMES (canonical JSON: sorted
        keys, normalised values, a field not sent left out), not over this class: a field
        added to the class later changes no stored hash, so a scanner retry spanning that
        deploy is still a duplicate (tests/domain/test_content_hash.py).
        """
        return hashlib.sha256(orjson.dumps(_sent(self), option=orjson.OPT_SORT_KEYS)).digest()

    def legacy_content_hash(self) -> bytes:
        """The hash events recorded before the canonical form carry: the thirteen fields
        the event had then, by their Python names, in that order (None included: orjson
        wrote the dataclass field by field). Computed only when a retry meets a stored
        hash that the canonical one does not match."""
        old = {name: getattr(self, name) for name in LEGACY_HASH_FIELDS}
        return hashlib.sha256(orjson.dumps(old)).digest()


# The fields the scanner sent, by their spec names (an optional one only when sent).
_sent = spec_dict(REQUIRED, attributes=True, unless_none=OPTIONAL)

# The fields of PackingEvent, in order, when the first events were hashed (the dataclass).
LEGACY_HASH_FIELDS = (
    "tenant",
    "event_id",
    "order_id",
    "product_id",
    "unit",
    "event_time",
    "site",
    "picked",
    "packed",
    "canceled",
    "delivery_cycle",
    "supplier_id",
    "book_product",
)


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
            same = seen[key] == digest or seen[key] == ev.legacy_content_hash()
            verdict = Verdict.DUPLICATE if same else Verdict.CONFLICT
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
    """Who sent a packing event: the token's subject and the saas-token's keyed
    fingerprint (TokenFingerprints), never the token itself."""

    user: str | None = None
    saas_token: str | None = None


class TokenFingerprints:
    """Keyed fingerprints of saas-tokens (docs/explanation/semantics.md,
    "Secrets are not history").

    An event keeps `hmac-sha256:<hex>` of the request's saas-token under the service's
    key (migrations/0008 creates it in ledger_keys; every replica reads the same one), so
    two events can be told to share a token without the token being kept. A scanner
    sends the same token with every scan: the last fingerprints are remembered, so the
    append path pays one HMAC per token, not per scan.
    """

    PREFIX = "hmac-sha256:"
    MAX_REMEMBERED = 4096

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._known: dict[str, str] = {}

    def __call__(self, token: str | None) -> str | None:
        if token is None:
            return None
        found = self._known.get(token)
        if found is None:
            digest = hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()
            found = self.PREFIX + digest
            if len(self._known) >= self.MAX_REMEMBERED:
                self._known.clear()
            self._known[token] = found
        return found
