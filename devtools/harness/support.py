"""Helpers shared by tests and benches; pytest fixtures stay in tests/conftest.py.

`packing_event` is the one builder of a scan (ledger.domain.packing.PackingEvent) for
tests and benches: sensible defaults, any field overridable. `numbered_scan` builds the
i-th of a run of distinct scans from it; `scan_body` and `scan_of_body` turn a scan into
the HTTP body a scanner posts (the spec's names) and back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from copy import deepcopy
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import yaml

from ledger.domain.packing import PackingEvent

# The contract, copied into the repository so a fresh clone tests against it.
SPEC_PATH = Path(__file__).resolve().parents[2] / "tests" / "spec" / "emporix-pick-pack-api.yml"

# Recalculation settings that retry fast: for tests and benches with a fake Order Service.
FAST_RECALCULATION = {
    "PICKPACK_ORDER_SERVICE_TOKEN": "os-token",
    "PICKPACK_RECALC_BACKOFF_SECONDS": "0.02",
    "PICKPACK_RECALC_MAX_BACKOFF_SECONDS": "0.1",
    "PICKPACK_RECALC_POLL_SECONDS": "0.02",
    "PICKPACK_RECALC_MAX_ATTEMPTS": "6",
    "PICKPACK_ORDER_SERVICE_TIMEOUT_SECONDS": "2",
}


def spec_document(path: Path) -> dict[str, Any]:
    """A fresh copy of a contract in tests/spec/, parsed once per process: the Order
    Service's document is 40,000 lines, which the pure-Python YAML parser reads in about a
    second, and a test building 230 orders from its example spent minutes there."""
    return deepcopy(_parsed(path.resolve()))


@cache
def _parsed(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc: dict[str, Any] = yaml.load(path.read_text(), Loader=loader)
    return doc


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a node's `$ref`s within an OpenAPI document."""
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


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


def numbered_scan(i: int, *, prefix: str = "e", orders: int = 40, **fields: Any) -> PackingEvent:
    """The i-th of a run of distinct scans: over `orders` orders and 7 products (p0..p6),
    every kind of amount, a second apart."""
    return packing_event(
        f"{prefix}{i}",
        order_id=f"o{i % orders}",
        product_id=f"p{i % 7}",
        event_time=f"2024-05-01T10:{(i // 60) % 60:02d}:{i % 60:02d}.000Z",
        picked=i % 3,
        packed=i % 5,
        canceled=i % 2,
        **fields,
    )


# The spec's name (OrderEntryEventCreate) of each field a scan's HTTP body carries, written
# here from tests/spec, not read from api/schemas.py, which the tests check.
_BODY_NAMES = {
    "event_id": "eventId",
    "order_id": "orderNumber",
    "product_id": "productId",
    "unit": "unit",
    "event_time": "timestamp",
    "site": "site",
    "picked": "pickedAmount",
    "packed": "packedAmount",
    "canceled": "canceledAmount",
    "delivery_cycle": "deliveryCycle",
    "supplier_id": "supplierId",
    "book_product": "bookProduct",
}


def scan_body(event: PackingEvent) -> dict[str, Any]:
    """The HTTP body a scanner posts for `event` (a field with no value left out)."""
    return {
        spec: value
        for name, spec in _BODY_NAMES.items()
        if (value := getattr(event, name)) is not None
    }


def scan_of_body(body: dict[str, Any], tenant: str = "demo") -> PackingEvent:
    """The scan an HTTP body stands for, as the ledger records it (absent amounts are 0).
    The body's timestamp must already be in the normal form (UTC, milliseconds, `Z`)."""
    fields = {name: body[spec] for name, spec in _BODY_NAMES.items() if body.get(spec) is not None}
    return packing_event(fields.pop("event_id"), tenant=tenant, **fields)


def view_totals(url: str, tenant: str | None = None) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            # one row per unit: summed per line (the folds these are compared with
            # sum every unit, and the tests send one unit per line)
            "SELECT tenant, order_id, product_id, sum(picked)::bigint, sum(packed)::bigint, "
            "sum(canceled)::bigint, sum(events)::int "
            "FROM line_totals WHERE %s::text IS NULL OR tenant = %s "
            "GROUP BY tenant, order_id, product_id",
            (tenant, tenant),
        ).fetchall()
    return {(r[0], r[1], r[2]): (r[3], r[4], r[5], r[6]) for r in rows}


def view_orders(url: str, tenant: str | None = None) -> dict[tuple[str, str], tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tenant, order_id, packing_status, products_total, products_packed, "
            "products_canceled FROM order_status WHERE %s::text IS NULL OR tenant = %s",
            (tenant, tenant),
        ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
