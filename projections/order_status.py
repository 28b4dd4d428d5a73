"""Projection "order_status": each order's packing state, folded by ledger.status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from psycopg import sql
from psycopg.types.json import Jsonb

from ledger.status import OrderState, apply
from projections.base import Recorded


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


_COLUMNS = (
    "tenant, order_id, registered, document, packing_status, active, assignees, packaging, "
    "holding_area_number, lines, products_total, products_packed, products_canceled, "
    "site_code, delivery_date, window_end"
)


def delivery_facts(document: dict[str, Any] | None) -> tuple[str | None, str | None, Any]:
    """siteCode, delivery date and delivery-window end: what the packlist sorts by."""
    if not document:
        return None, None, None
    delivery = document.get("delivery") or {}
    time_model = delivery.get("deliveryTimeModel") or {}
    window = delivery.get("deliveryWindow") or {}
    date = time_model.get("deliveryDate")
    end = window.get("deliveryTimeTo")
    end_at = None
    if isinstance(end, str):
        try:
            end_at = datetime.fromisoformat(end.replace("+0000", "+00:00"))
        except ValueError:
            end_at = None
    if date is None and end_at is not None:
        date = end_at.date().isoformat()
    return document.get("siteCode"), date, end_at


def load_query(table: sql.Identifier) -> sql.Composed:
    """The stored states of the orders whose tenants and ids arrive as two arrays.

    One nested lookup per key on the primary key (LATERAL ... OFFSET 0), whatever the
    statistics say of the table's size: the probe names only the order id, which leads
    the primary key and no other index, and the tenant is checked outside it
    (migrations/0006_key_lookups.sql, tests/test_query_plans.py).
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

    def accumulator(self, suffix: str = "") -> OrderStatusAccumulator:
        return OrderStatusAccumulator(sql.Identifier("order_status" + suffix))


class OrderStatusAccumulator:
    """Order states in memory: loaded once, folded many times, saved when dirty.

    A cache bound keeps a rebuild over millions of orders within its memory budget:
    after a flush, clean states beyond the bound are dropped and reloaded if needed.
    """

    MAX_CACHED = 200_000

    def __init__(self, table: sql.Identifier) -> None:
        self.table = table
        self.states: dict[tuple[str, str], OrderState] = {}
        self.dirty: set[tuple[str, str]] = set()

    def fold(self, curs: Any, events: list[Recorded]) -> None:
        states = self.states
        keys = [(e.data["tenant"], e.data["order_id"]) for e in events]
        missing = set(keys).difference(states)
        if missing:
            states.update(self._load(curs, self.table, sorted(missing)))
        for key, ev in zip(keys, events, strict=True):
            state = states.get(key)
            if state is None:
                state = states[key] = OrderState(tenant=key[0], order_id=key[1])
            apply(state, ev.kind, ev.data)
        self.dirty.update(keys)

    def flush(self, curs: Any) -> None:
        if self.dirty:
            self._save(curs, self.table, [self.states[k] for k in sorted(self.dirty)])
            self.dirty = set()
        if len(self.states) > self.MAX_CACHED:
            self.states = {}

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
                lines=r[8],
            )
        return states

    def _save(self, curs: Any, table: sql.Identifier, states: list[OrderState]) -> None:
        rows = []
        for s in states:
            total, packed, canceled = s.counts()
            site, date, end = delivery_facts(s.document)
            rows.append(
                (
                    s.tenant,
                    s.order_id,
                    s.registered,
                    Jsonb(s.document, _dumps) if s.document is not None else None,
                    s.status,
                    s.active,
                    Jsonb(s.assignees, _dumps),
                    Jsonb(s.packaging, _dumps),
                    s.holding_area_number,
                    Jsonb(s.lines, _dumps),
                    total,
                    packed,
                    canceled,
                    site,
                    date,
                    end,
                )
            )
        columns = list(zip(*rows, strict=True))
        curs.execute(
            sql.SQL(
                "INSERT INTO {t} (" + _COLUMNS + ") SELECT * FROM unnest("
                "%b::text[], %b::text[], %b::boolean[], %b::jsonb[], %b::text[], %b::boolean[], "
                "%b::jsonb[], %b::jsonb[], %b::int[], %b::jsonb[], %b::bigint[], %b::bigint[], "
                "%b::bigint[], %b::text[], %b::date[], %b::timestamptz[]) "
                "ON CONFLICT (tenant, order_id) DO UPDATE SET "
                "registered = excluded.registered, document = excluded.document, "
                "packing_status = excluded.packing_status, active = excluded.active, "
                "assignees = excluded.assignees, packaging = excluded.packaging, "
                "holding_area_number = excluded.holding_area_number, lines = excluded.lines, "
                "products_total = excluded.products_total, "
                "products_packed = excluded.products_packed, "
                "products_canceled = excluded.products_canceled, "
                "site_code = excluded.site_code, delivery_date = excluded.delivery_date, "
                "window_end = excluded.window_end"
            ).format(t=table),
            [list(c) for c in columns],
            binary=True,
        )
