"""Order import: the salesorder mapping (pure) and `pickpack orders import` end to end."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from cli.main import main
from devtools.harness.support import SPEC_PATH, spec_document
from ledger.domain.events import OrderRegistered
from ledger.domain.order_import import NotAnOrder, from_sales_order
from ledger.domain.status import OrderState, apply
from tests.helpers.orders import registered_documents, sales_order_example


def order_schema() -> dict[str, Any]:
    spec = spec_document(SPEC_PATH)
    return {"$ref": "#/components/schemas/Order", "components": spec["components"]}


def test_sales_order_maps_to_a_pick_pack_order() -> None:
    doc = from_sales_order(sales_order_example())
    jsonschema.validate(doc, order_schema())
    assert doc["id"] == "EON1001" and doc["siteCode"] == "DE"
    [entry] = doc["entries"]
    assert entry == {
        "entryId": "BC10033--BC10033-43",
        "productId": "BC10033--BC10033-43",
        "productName": "Safety shoes high Reptile RS S3 SRC, black",
        "totalCount": 3,
        "orderUnit": "H87",
        "imageUrl": "http://res.cloudinary.com/saas-ag/image/upload/v1681386368/test/media/"
        "6437eb7f8fc03d22f4e856ce",
        "unitPrice": 119,
        "totalPrice": entry["totalPrice"],
    }
    assert doc["customer"]["name"] == "Test name" and doc["customer"]["companyName"] == "Emporix"
    assert doc["delivery"]["deliveryTimeModel"] == {
        "deliveryDate": "2030-02-07",
        "deliveryTimeFrom": "10:00",
        "deliveryTimeTo": "14:30",
    }
    assert doc["delivery"]["deliveryWindow"] == {
        "deliveryCycle": "2030-02-07-15pickupFriday1000-1430",
        "deliveryCycleName": "pickupFriday1000-1430",
        "deliveryTimeTo": "2030-02-07T14:30:00Z",
    }
    assert doc["delivery"]["deliveryAddressModel"]["zip"] == "12221"


def test_weighed_entries_keep_their_measure_and_ordered_amount_wins() -> None:
    order = {
        "id": "o1",
        "entries": [
            {
                "id": "e1",
                "amount": 2,
                "orderedAmount": 3,
                "measurementUnit": {"unit": "GRM", "value": 500},
                "product": {"id": "cheese", "name": "Cheese"},
                "mixins": {"orderUnit": "GRM"},
            },
            {"id": "e2", "amount": 1},
        ],
    }
    doc = from_sales_order(order)
    first, second = doc["entries"]
    assert first["totalCount"] == 3 and first["orderUnit"] == "GRM"
    assert first["unitPricingMeasure"] == {"unitCode": "GRM", "value": "500"}
    assert second == {"entryId": "e2", "productId": "e2", "totalCount": 1, "orderUnit": "H87"}
    assert "customer" not in doc  # nothing known: absent, not empty
    # what the status rule and packedAmountInPc read from the registered document
    state = apply(OrderState("t", "o1"), OrderRegistered(tenant="t", order_id="o1", document=doc))
    assert state.counts() == (4, 0, 0)


def test_not_an_order() -> None:
    with pytest.raises(NotAnOrder):
        from_sales_order({"entries": []})
    with pytest.raises(NotAnOrder):
        from_sales_order({"id": "x", "entries": [{"amount": 1}]})


def test_import_from_a_file(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path))
    docs = [
        {
            "id": "o1",
            "siteCode": "main",
            "entries": [{"entryId": "e1", "productId": "p1", "totalCount": 1}],
        },
        {"id": "o2", "siteCode": "main", "packingStatus": "PACKED", "entries": []},
        {"id": "bad", "entries": [{"entryId": "x"}]},
    ]
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(docs))
    assert main(["orders", "import", str(path), "--tenant", "demo"]) == 1  # one refused
    registered = registered_documents(db_url)
    assert set(registered) == {"o1", "o2"}
    assert "packingStatus" not in registered["o2"]
    # importing again is idempotent: nothing new is recorded
    docs.pop()
    path.write_text(json.dumps(docs))
    assert main(["orders", "import", str(path), "--tenant", "demo"]) == 0
    with psycopg.connect(db_url) as conn:
        count = conn.execute("SELECT count(*) FROM stored_events").fetchone()
    assert count is not None and count[0] == 2


def test_import_from_the_order_service(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str | None]] = []
    order = sales_order_example()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path.endswith("/EON1001"):
                body = json.dumps(order).encode()
                self.send_response(200)
            else:
                body = b'{"status": 404}'
                self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
        monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path))
        monkeypatch.setenv(
            "PICKPACK_ORDER_SERVICE_URL", f"http://127.0.0.1:{server.server_port}/order-v2/"
        )
        monkeypatch.setenv("PICKPACK_ORDER_SERVICE_TOKEN", "os-token")
        code = main(
            ["orders", "import", "--tenant", "demo", "--from-order-service", "EON1001", "MISSING"]
        )
    finally:
        server.shutdown()
    assert code == 1  # MISSING answered 404
    assert seen == [
        ("/order-v2/demo/salesorders/EON1001", "Bearer os-token"),
        ("/order-v2/demo/salesorders/MISSING", "Bearer os-token"),
    ]
    registered = registered_documents(db_url)
    assert registered["EON1001"]["entries"][0]["productId"] == "BC10033--BC10033-43"
