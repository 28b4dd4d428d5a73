"""Helpers shared by tests and benches; pytest fixtures stay in tests/conftest.py.

`packing_event` is the one builder of a scan (ledger.domain.packing.PackingEvent) for
tests and benches: sensible defaults, any field overridable.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.packing import PackingEvent


def packing_event(
    event_id: str,
    *,
    tenant: str = "demo",
    order_id: str = "o1",
    product_id: str = "p1",
    unit: str = "H87",
    event_time: str = "2024-05-01T10:00:00.000Z",
    site: str = "main",
    **fields: Any,
) -> PackingEvent:
    """A valid, normalised scan; `fields` sets picked, packed, canceled and the rest."""
    return PackingEvent(
        tenant=tenant,
        event_id=event_id,
        order_id=order_id,
        product_id=product_id,
        unit=unit,
        event_time=event_time,
        site=site,
        **fields,
    )
