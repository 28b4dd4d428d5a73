"""Moving from Emporix: its events as ours, import tallies, and reconciling totals. Pure.

- `from_feed_item`: one item of Emporix's `GET /pick-pack/{tenant}/events` (the spec's
  OrderEntryEventResponse) as the PackingEvent the scanner once sent, with the same rules
  a scan posted here passes (identifiers, amounts, an ISO 8601 time with a zone), and
  the Emporix `user` it was recorded for. Fields only the feed has (packedAmountInPc)
  are dropped: this service computes them (semantics.md, "packedAmountInPc"). Absent amounts are 0,
  as for a
  scan; absent optional fields stay absent, so a scan that went to both services while
  they ran side by side has the same content hash here and counts as "already there".
- `Tally`: what an import did, by verdict.
- `line_totals` / `differences`: totals per (order, product, unit) summed from events,
  and where two such sums disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.domain.amounts import Amounts
from ledger.domain.inputs import MAX_AMOUNT, identifier_problem, text_problem
from ledger.domain.packing import PackingEvent, Verdict, format_event_time, parse_event_time
from ledger.domain.scan_fields import AMOUNTS, STORED


class InvalidFeedItem(ValueError):
    """An Emporix event this service would refuse had a scanner sent it here."""


_REQUIRED_IDS = tuple((spec, STORED[spec]) for spec in ("eventId", "orderNumber", "productId"))
_OPTIONAL_IDS = tuple((spec, STORED[spec]) for spec in ("deliveryCycle", "supplierId"))


def _identifier(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidFeedItem(f"{key}: required, a string")
    problem = identifier_problem(value)
    if problem:
        raise InvalidFeedItem(f"{key}: {problem}")
    return value


def from_feed_item(tenant: str, item: Any) -> tuple[PackingEvent, str | None]:
    """The event as first sent, and the user Emporix recorded it for (None if absent)."""
    if not isinstance(item, Mapping):
        raise InvalidFeedItem("an event must be a JSON object")
    fields: dict[str, Any] = {key: _identifier(item, name) for name, key in _REQUIRED_IDS}
    fields["unit"] = _identifier(item, "unit")
    # Emporix's create schema requires the site; an event without one cannot be
    # attributed to a store here, so it is refused rather than guessed.
    fields["site"] = _identifier(item, "site")
    for name, key in _OPTIONAL_IDS:
        if item.get(name) is not None:
            fields[key] = _identifier(item, name)
    for name, key in AMOUNTS:
        value = item.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
            raise InvalidFeedItem(f"{name}: must be an integer from 0 to {MAX_AMOUNT}")
        fields[key] = value
    book = item.get("bookProduct")
    if book is not None:
        if not isinstance(book, bool):
            raise InvalidFeedItem("bookProduct: must be a boolean")
        fields["book_product"] = book
    stamp = item.get("timestamp")
    if not isinstance(stamp, str):
        raise InvalidFeedItem("timestamp: required, a string")
    try:
        fields["event_time"] = format_event_time(parse_event_time(stamp))
    except ValueError as exc:
        raise InvalidFeedItem(f"timestamp: not an ISO 8601 date-time ({exc})") from None
    user = item.get("user")
    if user is not None and (not isinstance(user, str) or text_problem(user)):
        raise InvalidFeedItem("user: must be a single line of text")
    return PackingEvent(tenant=tenant, **fields), user


@dataclass
class Tally:
    """An import's counts. `refused`: events not valid here, or for a CANCELLED order."""

    read: int = 0
    recorded: int = 0
    already_there: int = 0
    conflicting: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)

    def count(self, verdict: Verdict) -> None:
        if verdict is Verdict.RECORD:
            self.recorded += 1
        elif verdict is Verdict.DUPLICATE:
            self.already_there += 1
        elif verdict is Verdict.CONFLICT:
            self.conflicting += 1
        else:
            self.refused += 1

    def add(self, other: Tally) -> None:
        self.read += other.read
        self.recorded += other.recorded
        self.already_there += other.already_there
        self.conflicting += other.conflicting
        self.refused += other.refused
        self.problems.extend(other.problems)

    @classmethod
    def from_dict(cls, counts: Mapping[str, int]) -> Tally:
        return cls(
            read=int(counts.get("read", 0)),
            recorded=int(counts.get("recorded", 0)),
            already_there=int(counts.get("already_there", 0)),
            conflicting=int(counts.get("conflicting", 0)),
            refused=int(counts.get("refused", 0)),
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "recorded": self.recorded,
            "already_there": self.already_there,
            "conflicting": self.conflicting,
            "refused": self.refused,
        }


# (order, product, unit) -> its amounts
LineKey = tuple[str, str, str]


# What a line's totals read of a scan, by the name it goes by in a feed item (the spec's)
# and in a stored state: order, product, unit, timestamp, then the three amounts.
_TOTALLED = ("orderNumber", "productId", "unit", "timestamp", *(s for s, _ in AMOUNTS))
FEED_NAMES = _TOTALLED
STORED_NAMES = tuple(STORED[spec] for spec in _TOTALLED)
_NONE = Amounts()  # a line one side does not have (never changed)


def add_to_totals(
    totals: dict[LineKey, Amounts],
    items: Iterable[Mapping[str, Any]],
    until: datetime | None = None,
    names: tuple[str, ...] = FEED_NAMES,
) -> None:
    """Sum scans into `totals`: feed items (the spec's OrderEntryEventResponse names), or
    with `names=STORED_NAMES` stored PackingEventRecorded states; with `until`, only those
    whose timestamp is at or before it (an unreadable one counts)."""
    order, product, unit, stamp, picked_, packed_, canceled_ = names
    for item in items:
        if until is not None and _after(item.get(stamp), until):
            continue
        key = (str(item.get(order)), str(item.get(product)), str(item.get(unit)))
        line = totals.get(key)
        if line is None:
            line = totals[key] = Amounts()
        line.add(
            _amount(item.get(picked_)), _amount(item.get(packed_)), _amount(item.get(canceled_))
        )


def _after(stamp: Any, until: datetime) -> bool:
    try:
        return parse_event_time(str(stamp)) > until
    except ValueError:
        return False


def _amount(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Difference:
    order_id: str
    product_id: str
    unit: str
    emporix: Amounts
    here: Amounts


def differences(
    emporix: Mapping[LineKey, Amounts], here: Mapping[LineKey, Amounts]
) -> list[Difference]:
    """Every line whose totals differ (a line missing on one side counts as zeros)."""
    out = []
    for key in sorted(set(emporix) | set(here)):
        theirs, ours = emporix.get(key, _NONE), here.get(key, _NONE)
        if theirs != ours:
            out.append(Difference(*key, emporix=theirs, here=ours))
    return out
