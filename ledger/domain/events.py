"""The facts the ledger records. Plain, frozen event classes with no I/O.

Every event carries its tenant and order, so projections and tenant sharding need
nothing but the event itself. Packing events live in one stream per order line
(tenant, order, product); order facts live in one stream per order. Fields are
JSON-native (str, int, bool, lists and dicts of them) so that the stored state
is plain JSON that a rebuild or another language can read (stored compressed by
default, with a dictionary any zstd library can use: ledger/adapters/compression.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import KW_ONLY, dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from itertools import repeat
from typing import Any, ClassVar, Self, TypeVar, cast, overload
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


E = TypeVar("E", bound="LedgerEvent")


def event_class(topic: str) -> type[LedgerEvent] | None:
    """The event class a stored topic names; None for a topic the ledger never writes.

    Projections and folds dispatch on the class, so renaming a class cannot leave a
    handler matching a stale name (tests/domain/test_event_handlers.py).
    """
    return EVENT_CLASSES.get(topic)


# The envelope of a fact a decision made and the store has not recorded yet: the store
# gives it its stream's id and version, and the time it records it (unless the fact says
# when it was first recorded: one brought back from an export).
UNRECORDED_STREAM = UUID(int=0)
UNRECORDED_AT = datetime(1970, 1, 1, tzinfo=UTC)


_new = object.__new__
_set_attribute = object.__setattr__


@overload
def restored(cls: type[E], state: dict[str, Any]) -> E: ...


@overload
def restored(cls: type[E] | None, state: dict[str, Any]) -> E | None: ...


def restored(cls: type[E] | None, state: dict[str, Any]) -> E | None:
    """The fact of class `cls` whose stored state (decoded JSON) is `state`, as the folds
    read it; None for a topic the ledger never writes (`cls` None).

    The state dict becomes the object's attributes as it is: nothing copied or converted
    (a rebuild restores millions of facts; the library's mapper builds its events the same
    way, without calling `__init__`). So the envelope is not decoded: `timestamp` stays in
    the library's transcoding, and a state holds no stream id or version (they read as the
    unrecorded defaults); no fold reads them (tests/domain/test_event_handlers.py), the
    position comes with the row.
    """
    if cls is None:
        return None
    event = _new(cls)
    _set_attribute(event, "__dict__", state)
    return event


def restored_all(
    classes: list[type[LedgerEvent] | None], states: list[dict[str, Any]]
) -> list[LedgerEvent | None]:
    """`restored` of many facts at once (projections restore a batch of thousands): the
    instances made and given their states by `map`, without a Python call per fact."""
    if None in classes:
        return [restored(cls, state) for cls, state in zip(classes, states, strict=True)]
    events = list(map(_new, cast(list[type[LedgerEvent]], classes)))
    deque(map(_set_attribute, events, repeat("__dict__"), states), maxlen=0)
    return cast(list[LedgerEvent | None], events)


@dataclass(frozen=True)
class LedgerEvent(DomainEvent):
    """Base of every recorded fact; `timestamp` (from DomainEvent) is when it was recorded.

    Decisions construct the facts themselves, keywords only and without the envelope
    (`OrderCancelled(tenant=..., order_id=..., user=...)`): mypy checks every field
    against the class. The store stamps the envelope as it appends (`recorded`).
    """

    # The topic its events are stored under (the library's `TOPIC` class attribute).
    TOPIC: ClassVar[str]

    # The library's envelope, given defaults (keyword-only, so the fields after them need
    # none): redeclared here, the fields keep their places, so a stored state's keys keep
    # their order (tests/store/test_stored_compat.py).
    _: KW_ONLY
    originator_id: UUID = UNRECORDED_STREAM
    originator_version: int = 0
    timestamp: datetime = UNRECORDED_AT
    tenant: str
    order_id: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TOPIC = f"{STORED_TOPIC_MODULE}:{cls.__qualname__}"
        register_topic(cls.TOPIC, cls)  # decodable before anything was encoded
        EVENT_CLASSES[cls.TOPIC] = cls

    def stream(self) -> UUID:
        """The stream it is recorded in: its order's own (line facts: their line's)."""
        return order_stream_id(self.tenant, self.order_id)

    def recorded(self, version: int, at: datetime) -> Self:
        """This fact as the store records it: in its stream at `version`, at the instant
        `at`, unless the fact says when it was first recorded (brought back from an export)."""
        return replace(
            self,
            originator_id=self.stream(),
            originator_version=version,
            timestamp=at if self.timestamp == UNRECORDED_AT else self.timestamp,
        )


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

    def stream(self) -> UUID:
        return line_stream_id(self.tenant, self.order_id, self.product_id)


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

    def stream(self) -> UUID:
        return line_stream_id(self.tenant, self.order_id, self.product_id)
