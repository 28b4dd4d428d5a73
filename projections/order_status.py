"""Projection "order_status": each order's packing state, folded by ledger.domain.status."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import sql

from ledger.domain.counting import lines_from_stored, stored_lines
from ledger.domain.events import LedgerEvent, OrderRegistered
from ledger.domain.order_document import delivery_facts
from ledger.domain.status import FOLDS, OrderState, apply
from projections.base import Recorded

_COLUMNS = (
    "tenant, order_id, registered, document, packing_status, active, assignees, packaging, "
    "holding_area_number, lines, products_total, products_packed, products_canceled, "
    "site_code, delivery_date, window_end"
)


def load_query(table: sql.Identifier) -> sql.Composed:
    """The stored states of the orders whose tenants and ids arrive as two arrays.

    One nested lookup per key on the primary key (LATERAL ... OFFSET 0), whatever the
    statistics say of the table's size: the probe names only the order id, which leads
    the primary key and no other index, and the tenant is checked outside it
    (migrations/0006_key_lookups.sql, tests/store/test_query_plans.py).
    """
    return sql.SQL(
        "SELECT o.tenant, o.order_id, o.document, o.packing_status, o.active, "
        "o.assignees, o.packaging, o.holding_area_number, o.lines "
        "FROM unnest(%b::text[], %b::text[]) AS k(t, o), "
        "LATERAL (SELECT * FROM {t} WHERE order_id = k.o OFFSET 0) o "
        "WHERE o.tenant = k.t"
    ).format(t=table)


class OrderStatus:
    name: str = "order_status"
    tables: tuple[str, ...] = ("order_status",)
    handles: frozenset[type[LedgerEvent]] = frozenset(FOLDS)  # the order state's own folds
    ignores: frozenset[type[LedgerEvent]] = frozenset()

    def accumulator(self, suffix: str = "") -> OrderStatusAccumulator:
        return OrderStatusAccumulator(sql.Identifier("order_status" + suffix))


class OrderStatusAccumulator:
    """Order states in memory: loaded once, folded many times, saved when dirty.

    A cache bound keeps a rebuild over millions of orders within its memory budget:
    after a flush, clean states beyond the bound are dropped and reloaded if needed.
    A row's document is written only by the flush after the order was (re-)registered:
    it is the row's largest part, and a packing event never changes it.
    """

    # States kept across a rebuild's flushes (the live runner keeps its own few): an order
    # state with five lines holds about 2 KB of Python objects, so 200,000 of them (a
    # store of 10,000,000 scans) would take more than a rebuild's whole memory budget.
    MAX_CACHED = 10_000
    # What a state weighs in line_totals rows, for the rebuild's bound on what it holds
    # (projections/rebuild.py, MAX_ROWS): measured, an order state with five lines holds
    # 2.1 KB, a line's sums 0.34 KB (tests/projections/test_rebuild_memory.py).
    STATE_WEIGHT = 6
    # States per upsert statement: a flush's transient copies (rows, their JSON) stay
    # bounded whatever it writes.
    SAVE_SLICE = 5_000

    def __init__(self, table: sql.Identifier) -> None:
        self.table = table
        self.states: dict[tuple[str, str], OrderState] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.registered: set[tuple[str, str]] = set()  # documents to write at the flush
        # The table holds no row of the orders folded until the next flush (start_empty):
        # nothing to load, and the flush copies its rows in.
        self.fresh = False

    def fold(self, curs: Any, events: list[Recorded]) -> None:
        states = self.states
        facts = [r.event for r in events if r.event is not None]
        keys = [(e.tenant, e.order_id) for e in facts]
        missing = set(keys).difference(states)
        if missing and not self.fresh:
            states.update(self._load(curs, self.table, sorted(missing)))
        for key, e in zip(keys, facts, strict=True):
            state = states.get(key)
            if state is None:
                state = states[key] = OrderState(tenant=key[0], order_id=key[1])
            apply(state, e)
            if type(e) is OrderRegistered:
                self.registered.add(key)
        self.dirty.update(keys)

    def flush(self, curs: Any) -> None:
        if self.dirty:
            keys = sorted(self.dirty)
            if self.fresh:
                self._copy(curs, [self.states[k] for k in keys])
            else:
                for i in range(0, len(keys), self.SAVE_SLICE):
                    self._save(
                        curs, self.table, [self.states[k] for k in keys[i : i + self.SAVE_SLICE]]
                    )
            self.dirty = set()
            self.registered = set()
        self.fresh = False
        if len(self.states) > self.MAX_CACHED:
            self.states = {}

    def start_empty(self) -> None:
        self.states = {}
        self.dirty = set()
        self.registered = set()
        self.fresh = True

    def held(self) -> int:
        return len(self.states)

    def rows(self) -> int:
        # States beyond these are the ones kept across flushes, at most MAX_CACHED.
        return self.STATE_WEIGHT * len(self.dirty)

    def _load(
        self, curs: Any, table: sql.Identifier, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], OrderState]:
        rows = curs.execute(
            load_query(table), ([k[0] for k in keys], [k[1] for k in keys])
        ).fetchall()
        states = {}
        for r in rows:
            r = tuple(r.values()) if isinstance(r, dict) else r
            states[(r[0], r[1])] = OrderState(
                tenant=r[0],
                order_id=r[1],
                document=r[2],
                status=r[3],
                active=r[4],
                assignees=r[5],
                packaging=r[6],
                holding_area_number=r[7],
                lines=lines_from_stored(r[8]),
            )
        return states

    def _copy(self, curs: Any, states: list[OrderState]) -> None:
        """Write new rows by COPY (psycopg writes them in C): no row to merge with, so
        neither the upsert's JSON document nor the server's merge of each row is needed.
        The columns get what the upsert's casts would make of the same values."""
        dumps = orjson.dumps
        statement = sql.SQL("COPY {t} (" + _COLUMNS + ") FROM STDIN").format(t=self.table)
        with curs.copy(statement) as copy:
            write = copy.write_row
            for s in states:
                total, packed, canceled = s.counts()
                site, day, end = delivery_facts(s.document)
                write(
                    (
                        s.tenant,
                        s.order_id,
                        s.registered,
                        None if s.document is None else dumps(s.document).decode(),
                        s.status,
                        s.active,
                        dumps(s.assignees).decode(),
                        dumps(s.packaging).decode(),
                        s.holding_area_number,
                        dumps(stored_lines(s.lines)).decode(),
                        total,
                        packed,
                        canceled,
                        _as_text(site),
                        _as_text(day),
                        end,
                    )
                )

    def _save(self, curs: Any, table: sql.Identifier, states: list[OrderState]) -> None:
        """Upsert the states, sent as one JSON document (one orjson call, one parameter).

        As sixteen binary arrays, psycopg's array and jsonb dumpers took more of a step's
        Python time than anything else (bench/rebuild.py).
        """
        rows = []
        for s in states:
            total, packed, canceled = s.counts()
            site, date, end = delivery_facts(s.document)
            registered_now = (s.tenant, s.order_id) in self.registered
            rows.append(
                (
                    s.tenant,
                    s.order_id,
                    s.registered,
                    s.document if registered_now else None,  # None: keep the row's
                    s.status,
                    s.active,
                    s.assignees,
                    s.packaging,
                    s.holding_area_number,
                    stored_lines(s.lines),
                    total,
                    packed,
                    canceled,
                    site,
                    date,
                    end,
                )
            )
        curs.execute(
            sql.SQL(
                "INSERT INTO {t} AS o (" + _COLUMNS + ") "
                "SELECT r->>0, r->>1, (r->>2)::boolean, "
                # a document of JSON null is no document (SQL NULL), as before
                "CASE WHEN jsonb_typeof(r->3) = 'null' THEN NULL ELSE r->3 END, "
                "r->>4, (r->>5)::boolean, r->6, r->7, (r->>8)::int, "
                "r->9, (r->>10)::bigint, (r->>11)::bigint, (r->>12)::bigint, "
                "r->>13, (r->>14)::date, (r->>15)::timestamptz "
                "FROM jsonb_array_elements(%s::jsonb) AS r "
                "ON CONFLICT (tenant, order_id) DO UPDATE SET "
                "registered = excluded.registered, "
                # only OrderRegistered sets a document, and never back to none
                "document = coalesce(excluded.document, o.document), "
                "packing_status = excluded.packing_status, active = excluded.active, "
                "assignees = excluded.assignees, packaging = excluded.packaging, "
                "holding_area_number = excluded.holding_area_number, lines = excluded.lines, "
                "products_total = excluded.products_total, "
                "products_packed = excluded.products_packed, "
                "products_canceled = excluded.products_canceled, "
                "site_code = excluded.site_code, delivery_date = excluded.delivery_date, "
                "window_end = excluded.window_end"
            ).format(t=table),
            (orjson.dumps(rows).decode(),),
        )


def _as_text(value: Any) -> str | None:
    """A document's field as the upsert's `->>` reads it: a string as it is, any other
    JSON value as its JSON text, null as no value."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
