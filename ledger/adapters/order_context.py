"""What an order command may read, inside the event store's locked transaction."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.adapters import sql
from ledger.domain.events import event_class, order_stream_id
from ledger.domain.status import OrderState, apply


class OrderContext:
    """What an order decision may look at, read inside the locked transaction."""

    def __init__(self, curs: Any, tenant: str, order_id: str) -> None:
        self._curs = curs
        self.tenant = tenant
        self.order_id = order_id
        self.state = OrderState(tenant=tenant, order_id=order_id)
        for row in curs.execute(sql.ORDER_STREAM, (order_stream_id(tenant, order_id),)):
            apply(self.state, event_class(row["topic"]), orjson.loads(bytes(row["state"])))

    def lines(self) -> tuple[dict[str, list[int]], dict[str, str]]:
        """Exact [packed, canceled] per product and the last unit, from the line streams."""
        lines: dict[str, list[int]] = {}
        units: dict[str, str] = {}
        for row in self._curs.execute(sql.ORDER_LINES, (self.tenant, self.order_id)):
            d = orjson.loads(bytes(row["state"]))
            line = lines.setdefault(d["product_id"], [0, 0])
            line[0] += d["packed"]
            line[1] += d["canceled"]
            units[d["product_id"]] = d["unit"]
        return lines, units

    def next_holding_area(self) -> int:
        """Take the tenant's next holding area number (never handed out again)."""
        row = self._curs.execute(sql.NEXT_HOLDING_AREA, (self.tenant,)).fetchone()
        return int(row["last_number"])
