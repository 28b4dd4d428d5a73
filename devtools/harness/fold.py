"""The plain fold: what the views must equal, computed without any projection code."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from ledger.domain.packing import PackingEvent


def accepted(
    events: Iterable[PackingEvent], closed: AbstractSet[tuple[str, str]] = frozenset()
) -> list[PackingEvent]:
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


@dataclass(frozen=True)
class Corrected:
    """A correction as the reference model sees it: signed deltas of one line and unit."""

    tenant: str
    order_id: str
    product_id: str
    correction_id: str
    picked: int
    packed: int
    canceled: int
    unit: str = "H87"


def accepted_story(facts: Iterable[PackingEvent | Corrected]) -> list[PackingEvent | Corrected]:
    """Scans and corrections in arrival order, those the ledger records.

    A scan: the first of its (tenant, eventId). A correction: the first of its
    (tenant, correctionId), and only if no total of its line and unit (scans and earlier
    corrections) would fall below zero.
    """
    seen: set[tuple[str, str, str]] = set()
    sums: dict[tuple[str, str, str, str], list[int]] = {}
    out: list[PackingEvent | Corrected] = []
    for f in facts:
        ref = f.correction_id if isinstance(f, Corrected) else f.event_id
        key = (type(f).__name__, f.tenant, ref)
        if key in seen:
            continue
        line = sums.setdefault((f.tenant, f.order_id, f.product_id, f.unit), [0, 0, 0])
        after = [line[0] + f.picked, line[1] + f.packed, line[2] + f.canceled]
        if min(after) < 0:
            continue
        seen.add(key)
        line[:] = after
        out.append(f)
    return out


def story_line_totals(
    facts: Iterable[PackingEvent | Corrected],
) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    """line_totals with corrections: their deltas count, but not as packing events."""
    totals: dict[tuple[str, str, str], list[Any]] = {}
    for f in facts:
        t = totals.setdefault((f.tenant, f.order_id, f.product_id), [0, 0, 0, 0])
        t[0] += f.picked
        t[1] += f.packed
        t[2] += f.canceled
        t[3] += 0 if isinstance(f, Corrected) else 1
    return {k: tuple(v) for k, v in totals.items()}
