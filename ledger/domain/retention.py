"""The retention rule on positions (docs/explanation/retention.md): what is archived."""

from __future__ import annotations

from datetime import datetime


def archived_after(retained: tuple[datetime | None, int], position: int) -> datetime | None:
    """The cut-off when facts after `position` are archived (reading on from `position`
    would skip them), None when none are; `retained`: the store's latest cut-off and
    first retained position (ledger/adapters/archive_store.retention). The rule's one
    statement: the change feed, the export, the views' baseline and the rebuilds all
    ask it here."""
    cutoff, first = retained
    return cutoff if cutoff is not None and position < first - 1 else None
