"""Projection "line_totals": picked, packed, cancelled sums per order line."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from ledger.packing import parse_event_time
from projections.base import Recorded


class LineTotals:
    name = "line_totals"
    tables = ("line_totals",)

    def apply(self, curs: Any, events: list[Recorded], suffix: str = "") -> None:
        # Sum the batch in memory first: one row per line, however many events.
        acc: dict[tuple[str, str, str], list[Any]] = {}
        for ev in events:
            if ev.kind != "PackingEventRecorded":
                continue
            d = ev.data
            key = (d["tenant"], d["order_id"], d["product_id"])
            at = d["event_time"]
            row = acc.get(key)
            if row is None:
                acc[key] = [d["picked"], d["packed"], d["canceled"], d["unit"], 1, at, at]
            else:
                row[0] += d["picked"]
                row[1] += d["packed"]
                row[2] += d["canceled"]
                row[3] = d["unit"]
                row[4] += 1
                row[5] = min(row[5], at)
                row[6] = max(row[6], at)
        if not acc:
            return
        keys = list(acc)
        vals = list(acc.values())
        curs.execute(
            sql.SQL(
                "INSERT INTO {t} AS l (tenant, order_id, product_id, picked, packed, canceled, "
                "unit, events, first_event_at, last_event_at) "
                "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[], "
                "%b::bigint[], %b::bigint[], %b::text[], %b::int[], %b::timestamptz[], "
                "%b::timestamptz[]) "
                "ON CONFLICT (tenant, order_id, product_id) DO UPDATE SET "
                "picked = l.picked + excluded.picked, packed = l.packed + excluded.packed, "
                "canceled = l.canceled + excluded.canceled, unit = excluded.unit, "
                "events = l.events + excluded.events, "
                "first_event_at = least(l.first_event_at, excluded.first_event_at), "
                "last_event_at = greatest(l.last_event_at, excluded.last_event_at)"
            ).format(t=sql.Identifier("line_totals" + suffix)),
            (
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [v[0] for v in vals],
                [v[1] for v in vals],
                [v[2] for v in vals],
                [v[3] for v in vals],
                [v[4] for v in vals],
                [parse_event_time(v[5]) for v in vals],
                [parse_event_time(v[6]) for v in vals],
            ),
            binary=True,
        )
