"""What an order command may read, inside the event store's locked transaction."""

from __future__ import annotations

from typing import Any

import orjson

from ledger.adapters import sql
from ledger.adapters.compression import state_json
from ledger.domain.amounts import Amounts
from ledger.domain.counting import Lines
from ledger.domain.errors import CorrectionRefused, OrderArchived
from ledger.domain.events import (
    CorrectionRecorded,
    LedgerEvent,
    PackingEventRecorded,
    event_class,
    line_stream_id,
    order_stream_id,
    restored,
)
from ledger.domain.order_document import holding_place
from ledger.domain.packing import format_event_time
from ledger.domain.status import OrderState, apply


class OrderContext:
    """What an order decision may look at, read inside the locked transaction."""

    def __init__(self, curs: Any, tenant: str, order_id: str, with_lines: bool = False) -> None:
        self._curs = curs
        self.tenant = tenant
        self.order_id = order_id
        self.state = OrderState(tenant=tenant, order_id=order_id)
        # with_lines: the order's facts and its packing events, folded as the order_status
        # projection folds them, for a command that decides on the status clients see (a
        # PATCH to the status the order has records nothing) or on the exact line totals.
        # Without: the order's own stream, all that assignees, packaging and registration
        # decide on (and a cancellation is one of its facts).
        archived = curs.execute(sql.ARCHIVED_ORDER, (order_id, tenant)).fetchone()
        if archived is not None:
            cutoff = format_event_time(archived["cutoff"])
            raise OrderArchived(
                f"facts of order '{order_id}' recorded before {cutoff} are archived; a "
                "command on it needs its whole history"
            )
        stream = order_stream_id(tenant, order_id)
        rows = (
            curs.execute(sql.ORDER_FACTS, {"s": stream, "t": tenant, "o": order_id})
            if with_lines
            else curs.execute(sql.ORDER_STREAM, (stream,))
        )
        self.with_lines = with_lines
        # The facts read, as stored (class and state), in the order folded.
        self.recorded: list[tuple[type[LedgerEvent] | None, dict[str, Any]]] = []
        for row in rows:
            cls, state = event_class(row["topic"]), orjson.loads(state_json(row["state"]))
            apply(self.state, restored(cls, state))
            self.recorded.append((cls, state))

    def lines(self) -> Lines:
        """Exact totals per product and unit, from the line streams."""
        assert self.with_lines, "read with_lines=True"
        return self.state.lines

    def line_sums(self, product_id: str) -> dict[str, Amounts]:
        """The amounts per unit of one order line, scans and corrections."""
        sums: dict[str, Amounts] = {}
        stream = line_stream_id(self.tenant, self.order_id, product_id)
        for row in self._curs.execute(sql.STREAM, (stream,)):
            e = restored(event_class(row["topic"]), orjson.loads(state_json(row["state"])))
            if isinstance(e, PackingEventRecorded | CorrectionRecorded):  # all a line holds
                amounts = sums.get(e.unit)
                if amounts is None:
                    amounts = sums[e.unit] = Amounts()
                amounts.add(e.picked, e.packed, e.canceled)
        return sums

    def correction(self, correction_id: str) -> tuple[str, dict[str, Any]] | None:
        """The tenant's recorded correction with this id: its order and stored fields."""
        row = self._curs.execute(sql.FIND_CORRECTION, (correction_id, self.tenant)).fetchone()
        if row is None:
            return None
        if row["state"] is None:
            raise CorrectionRefused(
                f"correctionId: correction '{correction_id}' is archived; its id stays taken"
            )
        return row["order_id"], orjson.loads(state_json(row["state"]))

    def next_holding_area(self) -> int:
        """Take the next holding area number of the order's site and delivery date (never
        handed out again there)."""
        site, day = holding_place(self.state.document)
        row = self._curs.execute(
            sql.NEXT_HOLDING_AREA, {"t": self.tenant, "s": site, "d": day}
        ).fetchone()
        return int(row["last_number"])
