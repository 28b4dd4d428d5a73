"""Recording a scan: the use case behind POST /events (both of the API's ways in).

A scanner's packing event goes to the group-commit writer (group_commit.py), which
decides it against what the store holds (ledger/domain/packing.py) and answers once its
transaction has committed (docs/explanation/semantics.md, "Idempotency"). Who sent it
is kept as the token's subject and a keyed fingerprint of the saas-token, never the
token itself ("Secrets are not history").
"""

from __future__ import annotations

from typing import Protocol

from ledger.domain.errors import ScanRefused
from ledger.domain.packing import Attribution, Outcome, PackingEvent, TokenFingerprints, Verdict
from ledger.services.group_commit import GroupCommitter


class ScanWriter(Protocol):
    """What recording a scan needs of a process (the Runtime has both)."""

    @property
    def committer(self) -> GroupCommitter: ...

    @property
    def fingerprints(self) -> TokenFingerprints: ...


async def record_packing_event(
    writer: ScanWriter, event: PackingEvent, user: str | None, saas_token: str
) -> Outcome:
    """Append the event; returns once its transaction has committed: RECORD (new) or
    DUPLICATE (the same eventId with the same content, recorded before: nothing new).

    Raises ScanRefused for an eventId recorded with other content, or an order that is
    CANCELLED (both 409).
    """
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
