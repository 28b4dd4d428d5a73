"""Projection "line_totals": picked, packed, cancelled sums per order line and unit.

Amounts in unlike units are never added (docs/explanation/semantics.md, "Units are never mixed"):
one row per unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from ledger.domain import events
from ledger.domain.amounts import Amounts
from ledger.domain.events import CorrectionRecorded, PackingEventRecorded
from projections.base import Recorded

# Rows per upsert statement in a flush.
FLUSH_SLICE = 20_000


class LineTotals:
    name: str = "line_totals"
    tables: tuple[str, ...] = ("line_totals",)
    handles: frozenset[type[events.LedgerEvent]] = frozenset(
        {events.PackingEventRecorded, events.CorrectionRecorded}
    )
    # Order facts change no line's sums.
    ignores: frozenset[type[events.LedgerEvent]] = frozenset(
        {
            events.OrderRegistered,
            events.PackingStatusChanged,
            events.AssigneeAdded,
            events.AssigneeRemoved,
            events.PackagingChanged,
            events.OrderCancelled,
            events.OrderFinished,
            events.HoldingAreaAssigned,
        }
    )

    def accumulator(self, suffix: str = "") -> LineTotalsAccumulator:
        return LineTotalsAccumulator("line_totals" + suffix)


@dataclass(slots=True)
class LineSums(Amounts):
    """A line's amounts in one unit, and what its scans add: how many, and the first and
    last scanner times (normalised ISO text: compares chronologically). A correction adds
    its deltas to the amounts only: it is neither a packing event nor a scanner's time."""

    events: int = 0
    first_at: str | None = None
    last_at: str | None = None


class LineTotalsAccumulator:
    """Sums per line in memory; a flush adds the sums to the table's rows."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.pending: dict[tuple[str, str, str, str], LineSums] = {}
        # The table holds no row of these lines yet (start_empty): the next flush copies
        # its rows in.
        self.empty = False

    def start_empty(self) -> None:
        self.pending = {}
        self.empty = True

    def fold(self, curs: Any, events: list[Recorded]) -> None:
        acc = self.pending
        for recorded in events:
            e = recorded.event
            if not isinstance(e, PackingEventRecorded):
                if isinstance(e, CorrectionRecorded):
                    self._correct(e)
                continue
            key = (e.tenant, e.order_id, e.product_id, e.unit)
            at = e.event_time
            row = acc.get(key)
            if row is None:
                acc[key] = LineSums(e.picked, e.packed, e.canceled, 1, at, at)
            else:
                row.picked += e.picked
                row.packed += e.packed
                row.canceled += e.canceled
                row.events += 1
                if row.first_at is None:  # the line had only corrections so far
                    row.first_at = row.last_at = at
                elif at < row.first_at:
                    row.first_at = at
                elif row.last_at is not None and at > row.last_at:
                    row.last_at = at

    def _correct(self, e: CorrectionRecorded) -> None:
        """A correction's signed deltas, added to its line's sums."""
        key = (e.tenant, e.order_id, e.product_id, e.unit)
        row = self.pending.get(key)
        if row is None:
            self.pending[key] = LineSums(e.picked, e.packed, e.canceled)
        else:
            row.add(e.picked, e.packed, e.canceled)

    def held(self) -> int:
        return 0  # sums are written and forgotten at each flush

    def rows(self) -> int:
        return len(self.pending)

    def flush(self, curs: Any) -> None:
        acc, self.pending = self.pending, {}
        if self.empty:
            # A rebuild's first flush into its fresh table: nothing to merge with, so
            # COPY, whose rows psycopg writes in C. The upsert's ten arrays were dumped
            # element by element in Python, and the server merged each row: about three
            # times the COPY's time for the 100,000 lines of bench/rebuild.py's store.
            self.empty = False
            self._copy(curs, acc)
            return
        items = list(acc.items())
        del acc
        # In slices: a flush's transient arrays stay bounded however many rows it writes.
        for i in range(0, len(items), FLUSH_SLICE):
            self._upsert(curs, items[i : i + FLUSH_SLICE])

    def _copy(self, curs: Any, rows: dict[tuple[str, str, str, str], LineSums]) -> None:
        statement = sql.SQL(
            "COPY {t} (tenant, order_id, product_id, unit, picked, packed, canceled, events, "
            "first_event_at, last_event_at) FROM STDIN"
        ).format(t=sql.Identifier(self.table))
        with curs.copy(statement) as copy:
            write = copy.write_row
            for (tenant, order_id, product_id, unit), v in rows.items():
                write(
                    (
                        tenant,
                        order_id,
                        product_id,
                        unit,
                        v.picked,
                        v.packed,
                        v.canceled,
                        v.events,
                        v.first_at,
                        v.last_at,
                    )
                )

    def _upsert(self, curs: Any, items: list[tuple[tuple[str, str, str, str], LineSums]]) -> None:
        keys = [k for k, _ in items]
        vals = [v for _, v in items]
        curs.execute(
            sql.SQL(
                "INSERT INTO {t} AS l (tenant, order_id, product_id, picked, packed, canceled, "
                "unit, events, first_event_at, last_event_at) "
                "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], "
                "%b::bigint[], %b::bigint[], %b::text[], %b::int[], %b::text[]::timestamptz[], "
                "%b::text[]::timestamptz[]) "
                "ON CONFLICT (tenant, order_id, product_id, unit) DO UPDATE SET "
                "picked = l.picked + excluded.picked, packed = l.packed + excluded.packed, "
                "canceled = l.canceled + excluded.canceled, "
                "events = l.events + excluded.events, "
                "first_event_at = least(l.first_event_at, excluded.first_event_at), "
                "last_event_at = greatest(l.last_event_at, excluded.last_event_at)"
            ).format(t=sql.Identifier(self.table)),
            (
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [v.picked for v in vals],
                [v.packed for v in vals],
                [v.canceled for v in vals],
                [k[3] for k in keys],
                [v.events for v in vals],
                [v.first_at for v in vals],  # ISO text: PostgreSQL parses it faster than Python
                [v.last_at for v in vals],
            ),
            binary=True,
        )
