"""The facts the ledger records. Plain, frozen event classes with no I/O.

Every event carries its tenant and order, so projections and tenant sharding need
nothing but the event itself. Packing events live in one stream per order line
(tenant, order, product); order facts live in one stream per order. Fields are
JSON-native (str, int, bool, lists and dicts of them) so that the stored state
is plain JSON that a rebuild or another language can read (stored compressed by
default, with a dictionary any zstd library can use: ledger/adapters/compression.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import register_topic

_NS = uuid5(NAMESPACE_URL, "urn:pickpack-ledger")


@lru_cache(maxsize=16_384)  # the lines being packed now recur with every scan
def line_stream_id(tenant: str, order_id: str, product_id: str) -> UUID:
    """The stream of one order line: every packing event of that product in that order."""
    return uuid5(_NS, f"line\x1f{tenant}\x1f{order_id}\x1f{product_id}")


@lru_cache(maxsize=16_384)
def line_stream_key(tenant: str, order_id: str, product_id: str) -> str:
    """:func:`line_stream_id` as text, the form an append sends and compares it in."""
    return str(line_stream_id(tenant, order_id, product_id))


def order_stream_id(tenant: str, order_id: str) -> UUID:
    """The stream of one order's own facts: registration, status, assignees, packaging."""
    return uuid5(_NS, f"order\x1f{tenant}\x1f{order_id}")


# The module path the event classes had when the first events were stored. A stored
# event's topic names its class; the library would derive it from the class's current
# module, so moving the classes would change what new events are stored as and make old
# topics unresolvable. Every event class keeps its topic under this name instead: one
# format for the whole store, readable by any version (docs/explanation/architecture.md, "Topics").
STORED_TOPIC_MODULE = "ledger.events"

# Every event class by the topic it is stored under (filled as the classes are defined).
EVENT_CLASSES: dict[str, type[LedgerEvent]] = {}


def event_class(topic: str) -> type[LedgerEvent] | None:
    """The event class a stored topic names; None for a topic the ledger never writes.

    Projections and folds dispatch on the class, so renaming a class cannot leave a
    handler matching a stale name (tests/domain/test_event_handlers.py).
    """
    return EVENT_CLASSES.get(topic)


@dataclass(frozen=True)
class LedgerEvent(DomainEvent):
    """Base of every recorded fact; `timestamp` (from DomainEvent) is when it was recorded."""

    # The topic its events are stored under (the library's `TOPIC` class attribute).
    TOPIC: ClassVar[str]

    tenant: str
    order_id: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TOPIC = f"{STORED_TOPIC_MODULE}:{cls.__qualname__}"
        register_topic(cls.TOPIC, cls)  # decodable before anything was encoded
        EVENT_CLASSES[cls.TOPIC] = cls


@dataclass(frozen=True)
class PackingEventRecorded(LedgerEvent):
    """A scanner's packing event, as accepted. Amounts are non-negative deltas."""

    event_id: str
    product_id: str
    delivery_cycle: str | None
    picked: int
    packed: int
    canceled: int
    supplier_id: str | None
    unit: str
    event_time: str  # the scanner's own timestamp, UTC, millisecond precision
    site: str
    book_product: bool | None
    user: str | None  # the token's `sub`
    # a keyed fingerprint at most ("Secrets are not history"), never the token
    saas_token: str | None


@dataclass(frozen=True)
class OrderRegistered(LedgerEvent):
    """The order document (spec `Order`) was registered or re-registered."""

    document: dict[str, Any]


@dataclass(frozen=True)
class PackingStatusChanged(LedgerEvent):
    """An explicit PATCH of packingStatus (CANCELLED has its own event)."""

    status: str
    user: str | None


@dataclass(frozen=True)
class AssigneeAdded(LedgerEvent):
    assignee: dict[str, Any]
    replaced: list[str]  # ids of assignees this one replaced (force=true)


@dataclass(frozen=True)
class AssigneeRemoved(LedgerEvent):
    assignee_id: str


@dataclass(frozen=True)
class PackagingChanged(LedgerEvent):
    """The packaging products of the order: [{entryId, packedCount}]."""

    packaging: list[dict[str, Any]]


@dataclass(frozen=True)
class OrderCancelled(LedgerEvent):
    """Terminal: after this, every write to the order is refused."""

    user: str | None


@dataclass(frozen=True)
class OrderFinished(LedgerEvent):
    """`finish`: PACKED, assignees removed, and the recalculation request it queued."""

    recalculation_id: str
    entries: list[dict[str, Any]]  # the calculations entries sent to the Order Service
    user: str | None


@dataclass(frozen=True)
class HoldingAreaAssigned(LedgerEvent):
    """The order got its holding area number, the next of its site and delivery date
    (first pack)."""

    number: int


@dataclass(frozen=True)
class CorrectionRecorded(LedgerEvent):
    """An audited correction of an order line: signed deltas of one unit, with a reason.

    Recorded on the line's stream, next to its packing events, so the line's fold sees
    both in commit order. Never in GET /events (whose amounts the spec keeps
    non-negative); the history and the change feed show it.
    """

    correction_id: str
    product_id: str
    picked: int
    packed: int
    canceled: int
    unit: str
    reason: str
    user: str | None
    saas_token: str | None  # a keyed fingerprint at most ("Secrets are not history"), never shown
