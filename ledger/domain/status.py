"""An order's packing state, folded from its events. Plain Python, no I/O.

packingStatus (docs/explanation/semantics.md, "packingStatus") is derived, not stored by clients:
INITIAL when registered with no activity; IN_PROGRESS after the first packing event
or assignee; PRE_PACKED when every entry is resolved (packed + cancelled >= totalCount,
or packed > 0 for a weight-dependent entry); PACKED after `finish`; CANCELLED only by
an explicit PATCH, and terminal. An explicit PATCH sets any other status; later facts
derive the status again only while it is one of the automatic ones (INITIAL,
IN_PROGRESS, PRE_PACKED), so a PACKED order stays PACKED until someone re-opens it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.domain import counting, events
from ledger.domain.counting import Lines

INITIAL, IN_PROGRESS, PRE_PACKED, PACKED, CANCELLED = (
    "INITIAL",
    "IN_PROGRESS",
    "PRE_PACKED",
    "PACKED",
    "CANCELLED",
)
STATUSES = (INITIAL, IN_PROGRESS, PRE_PACKED, PACKED, CANCELLED)
AUTOMATIC = frozenset({INITIAL, IN_PROGRESS, PRE_PACKED})


_UNSET = object()  # no document's entries worked out yet


@dataclass
class OrderState:
    """What the pack station sees of one order (without the per-line counts)."""

    tenant: str
    order_id: str
    document: dict[str, Any] | None = None  # the registered Order document
    status: str | None = None  # None until registered
    active: bool = False  # a packing event or an assignee was seen
    assignees: list[dict[str, Any]] = field(default_factory=list)
    packaging: list[dict[str, Any]] = field(default_factory=list)
    holding_area_number: int | None = None
    # productId -> unit -> its Amounts (ledger.domain.counting.Lines)
    lines: Lines = field(default_factory=dict)
    # The entries of the last finish's calculations body (semantics.md, "Commands are idempotent":
    # a finish with
    # the same totals queues nothing); None before any finish.
    last_finish: list[dict[str, Any]] | None = None
    # The document's entries, worked out once per document: a projection step applies
    # the rules to every order it touches (bench/rebuild.py measures it).
    _entries_of: Any = field(default=_UNSET, repr=False, compare=False)
    _entries: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    _plan: counting.Plan | None = field(default=None, repr=False, compare=False)

    @property
    def registered(self) -> bool:
        return self.document is not None

    def entries(self) -> list[dict[str, Any]]:
        if self._entries_of is not self.document:  # a document is replaced, never edited
            entries = (self.document or {}).get("entries") or []
            self._entries = [e for e in entries if isinstance(e, dict)]
            self._plan = counting.Plan(self._entries)
            self._entries_of = self.document
        return self._entries

    def plan(self) -> counting.Plan:
        self.entries()
        assert self._plan is not None
        return self._plan

    def split(self) -> counting.Split:
        """Each entry's figures (semantics.md, "A product in several entries", "Units are never
        mixed")."""
        return counting.split(self.entries(), self.lines)

    def all_entries_resolved(self) -> bool:
        plan = self._plan if self._entries_of is self.document else None
        return (plan or self.plan()).resolved(self.lines)

    def derived_status(self) -> str:
        if not self.active:
            return INITIAL
        return PRE_PACKED if self.all_entries_resolved() else IN_PROGRESS

    def rederive(self) -> None:
        if self.registered and (self.status is None or self.status in AUTOMATIC):
            self.status = self.derived_status()

    def counts(self) -> tuple[int, int, int]:
        """productsTotal, productsPacked, productsCanceled: the entries' split figures."""
        return self.plan().counts(self.lines)


# A fold gets the fact as its event class (restored from its stored state: events.restored).
Fold = Callable[[OrderState, Any], None]


def _packed(state: OrderState, ev: events.PackingEventRecorded) -> None:
    # A scan's amounts, added to its line's sums (per unit: ledger.domain.counting). The
    # fold a rebuild runs for most facts: no call it can do without.
    counting.add(state.lines, ev.product_id, ev.unit, ev.picked, ev.packed, ev.canceled)
    state.active = True
    if state.document is not None:  # registered: its status may follow
        state.rederive()


def _corrected(state: OrderState, ev: events.CorrectionRecorded) -> None:
    # A correction changes the counts as a scan does (its deltas may be negative), and
    # the automatic status follows them: PRE_PACKED back to IN_PROGRESS, say.
    counting.add(state.lines, ev.product_id, ev.unit, ev.picked, ev.packed, ev.canceled)
    state.active = True
    state.rederive()


def _registered(state: OrderState, ev: events.OrderRegistered) -> None:
    state.document = ev.document
    state.rederive()


def _status_changed(state: OrderState, ev: events.PackingStatusChanged) -> None:
    state.status = ev.status
    if ev.status != INITIAL:
        state.active = True


def _assignee_added(state: OrderState, ev: events.AssigneeAdded) -> None:
    replaced = set(ev.replaced)
    state.assignees = [a for a in state.assignees if a.get("id") not in replaced]
    state.assignees = [a for a in state.assignees if a.get("id") != ev.assignee.get("id")]
    state.assignees.append(ev.assignee)
    state.active = True
    state.rederive()


def _assignee_removed(state: OrderState, ev: events.AssigneeRemoved) -> None:
    state.assignees = [a for a in state.assignees if a.get("id") != ev.assignee_id]


def _packaging_changed(state: OrderState, ev: events.PackagingChanged) -> None:
    state.packaging = ev.packaging


def _finished(state: OrderState, ev: events.OrderFinished) -> None:
    if ev.recalculation_id:  # "": a finish that queued nothing (same totals)
        state.last_finish = ev.entries
    state.status = PACKED
    state.active = True
    state.assignees = []


def _cancelled(state: OrderState, ev: events.OrderCancelled) -> None:
    state.status = CANCELLED


def _holding_area(state: OrderState, ev: events.HoldingAreaAssigned) -> None:
    state.holding_area_number = ev.number


# How each kind of fact changes an order's state, keyed by event class: every class of
# ledger.domain.events has an entry (tests/domain/test_event_handlers.py).
FOLDS: dict[type[events.LedgerEvent], Fold] = {
    events.PackingEventRecorded: _packed,
    events.OrderRegistered: _registered,
    events.PackingStatusChanged: _status_changed,
    events.AssigneeAdded: _assignee_added,
    events.AssigneeRemoved: _assignee_removed,
    events.PackagingChanged: _packaging_changed,
    events.OrderFinished: _finished,
    events.OrderCancelled: _cancelled,
    events.HoldingAreaAssigned: _holding_area,
    events.CorrectionRecorded: _corrected,
}


def apply(state: OrderState, event: events.LedgerEvent | None) -> OrderState:
    """Fold one fact into the order's state (None, a topic the ledger never writes: nothing)."""
    if state.status == CANCELLED or event is None:
        return state  # terminal: nothing after a cancellation changes the order
    fold = FOLDS.get(type(event))
    if fold is not None:
        fold(state, event)
    return state
