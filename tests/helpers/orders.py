"""Order documents for the import tests: the Order Service spec's example, what was registered."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from devtools.harness.support import SPEC_PATH, spec_document
from ledger.adapters.compression import state_json

ORDER_API = SPEC_PATH.parent / "emporix-order-api.yml"


def sales_order_example() -> dict[str, Any]:
    """The Order Service spec's own salesOrder1 example, given an id and a delivery window."""
    spec = spec_document(ORDER_API)
    order = spec["components"]["examples"]["salesOrder1"]["value"]
    order["id"] = "EON1001"
    order["deliveryWindow"] = {
        "id": "w1",
        "deliveryDate": "2030-02-07",
        "deliveryCycle": "2030-02-07-15pickupFriday1000-1430",
        "deliveryCycleName": "pickupFriday1000-1430",
        "deliveryTimeRange": {"timeFrom": "10:00", "timeTo": "14:30"},
    }
    return order  # type: ignore[no-any-return]


def registered_documents(url: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT s.state FROM stored_events s WHERE s.topic LIKE '%%OrderRegistered'"
        ).fetchall()
    docs = [json.loads(state_json(r[0])) for r in rows]
    return {d["order_id"]: d["document"] for d in docs}
