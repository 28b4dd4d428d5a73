"""The projections this service keeps, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.line_totals import LineTotals
from projections.order_status import OrderStatus

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (LineTotals(), OrderStatus())}
