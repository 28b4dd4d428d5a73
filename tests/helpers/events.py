"""The recorded event classes, as the folds must know them."""

from __future__ import annotations

from ledger.domain.events import LedgerEvent


def all_event_classes() -> set[type[LedgerEvent]]:
    return set(LedgerEvent.__subclasses__())
