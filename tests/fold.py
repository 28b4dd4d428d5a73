"""The plain fold: what the views must equal, computed without any projection code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ledger.domain.packing import PackingEvent


def accepted(
    events: Iterable[PackingEvent], closed: set[tuple[str, str]] = frozenset()
) -> list[PackingEvent]:  # type: ignore[assignment]
    """First occurrence of each (tenant, eventId) wins; later ones record nothing."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in events:
        key = (e.tenant, e.event_id)
        if key in seen or (e.tenant, e.order_id) in closed:
            continue
        seen.add(key)
        out.append(e)
    return out


def line_totals(events: Iterable[PackingEvent]) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    totals: dict[tuple[str, str, str], list[Any]] = {}
    for e in events:
        t = totals.setdefault((e.tenant, e.order_id, e.product_id), [0, 0, 0, 0])
        t[0] += e.picked
        t[1] += e.packed
        t[2] += e.canceled
        t[3] += 1
    return {k: tuple(v) for k, v in totals.items()}
