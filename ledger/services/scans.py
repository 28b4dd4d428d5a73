"""Recording a scan: the use case behind POST /events (both of the API's ways in).

A scanner's packing event goes to the group-commit writer (group_commit.py), which
decides it against what the store holds (ledger/domain/packing.py) and answers once its
transaction has committed (docs/explanation/semantics.md, "Idempotency"). Who sent it
is kept as the token's subject and a keyed fingerprint of the saas-token, never the
token itself ("Secrets are not history").
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ledger.domain.errors import ScanRefused
from ledger.domain.packing import (
    Attribution,
    Outcome,
    PackingEvent,
    TokenFingerprints,
    Verdict,
    format_event_time,
    parse_event_time,
)
from ledger.services.group_commit import GroupCommitter


class Retention(Protocol):
    def current(self) -> tuple[datetime | None, int]:
        """The latest archive's cut-off (None: nothing archived) and first retained position."""
        ...


class ScanWriter(Protocol):
    """What recording a scan needs of a process (the Runtime has them all)."""

    @property
    def committer(self) -> GroupCommitter: ...

    @property
    def fingerprints(self) -> TokenFingerprints: ...

    @property
    def retention(self) -> Retention: ...


async def record_packing_event(
    writer: ScanWriter, event: PackingEvent, user: str | None, saas_token: str
) -> Outcome:
    """Append the event; returns once its transaction has committed: RECORD (new) or
    DUPLICATE (the same eventId with the same content, recorded before: nothing new).

    Raises ScanRefused for an eventId recorded with other content, an order that is
    CANCELLED, or a scan timestamped before the latest archive's cut-off (all 409): the
    eventIds of archived scans are no longer in the store, so such a scan could not be
    told from a retry (the duplicate window, docs/explanation/semantics.md).
    """
    cutoff, _ = writer.retention.current()
    if cutoff is not None and parse_event_time(event.event_time) < cutoff:
        raise ScanRefused(
            f"timestamp: scans before {format_event_time(cutoff)} are archived; a scan that "
            "old cannot be checked for duplicates and is not recorded"
        )
    who = Attribution(user, writer.fingerprints(saas_token))
    outcome = await writer.committer.append(event, who)
    if outcome.verdict is Verdict.CONFLICT:
        raise ScanRefused(
            f"eventId: event '{event.event_id}' was already recorded with other content"
        )
    if outcome.verdict is Verdict.ORDER_CLOSED:
        raise ScanRefused(
            f"orderNumber: order '{event.order_id}' is CANCELLED and accepts no events"
        )
    return outcome
