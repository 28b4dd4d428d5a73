"""`pickpack orders import --from-order-service --site S --from-date D [--to-date D]`:
the open orders of a site and delivery window, listed through the Order Service."""

from __future__ import annotations

from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.main import main
from devtools.fake_order_service import FakeOrderService
from tests.helpers.orders import registered_documents, sales_order_example


def sales_order(order_id: str, site: str, day: str, status: str = "CREATED") -> dict[str, Any]:
    order = deepcopy(sales_order_example())
    order["id"] = order_id
    order["siteCode"] = site
    order["status"] = status
    order["deliveryWindow"] = {**order["deliveryWindow"], "deliveryDate": day}
    return order


@pytest.fixture
def order_service(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeOrderService]:
    fake = FakeOrderService().start()
    monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PICKPACK_ORDER_SERVICE_URL", f"{fake.url}/order-v2")
    monkeypatch.setenv("PICKPACK_ORDER_SERVICE_TOKEN", "os-token")
    yield fake
    fake.stop()


def test_lists_a_sites_open_orders_of_the_window_page_by_page_and_registers_them(
    order_service: FakeOrderService, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = [f"A{n:03d}" for n in range(230)]  # three pages of 100
    for order_id in wanted:
        day = "2026-12-01" if int(order_id[1:]) % 2 else "2026-12-02"
        order_service.register_order("demo", order_id, sales_order(order_id, "main", day))
    others = {
        "OTHER-SITE": sales_order("OTHER-SITE", "north", "2026-12-01"),
        "TOO-EARLY": sales_order("TOO-EARLY", "main", "2026-11-30"),
        "TOO-LATE": sales_order("TOO-LATE", "main", "2026-12-03"),
        "SHIPPED": sales_order("SHIPPED", "main", "2026-12-01", status="SHIPPED"),
        "CONFIRMED": sales_order("CONFIRMED", "main", "2026-12-02", status="CONFIRMED"),
    }
    for order_id, doc in others.items():
        order_service.register_order("demo", order_id, doc)
    code = main(
        [
            "orders",
            "import",
            "--tenant",
            "demo",
            "--from-order-service",
            "--site",
            "main",
            "--from-date",
            "2026-12-01",
            "--to-date",
            "2026-12-02",
        ]
    )
    assert code == 0
    assert "imported 231 of 231 orders" in capsys.readouterr().err
    assert set(registered_documents(db_url)) == {*wanted, "CONFIRMED"}
    calls = [r for r in order_service.requests() if r.path.split("?")[0].endswith("/salesorders")]
    assert [urlsplit(r.path).path for r in calls] == ["/order-v2/demo/salesorders"] * 3
    query = parse_qs(urlsplit(calls[0].path).query)
    assert query["q"] == [
        'siteCode:main deliveryWindow.deliveryDate:(>="2026-12-01" AND <="2026-12-02")'
        " status:(CREATED,CONFIRMED)"
    ]
    assert [parse_qs(urlsplit(c.path).query)["pageNumber"] for c in calls] == [["1"], ["2"], ["3"]]
    assert calls[0].headers.get("Authorization") == "Bearer os-token"


def test_without_to_date_the_window_is_open_ended(
    order_service: FakeOrderService, db_url: str
) -> None:
    order_service.register_order("demo", "LATER", sales_order("LATER", "main", "2027-01-15"))
    order_service.register_order("demo", "BEFORE", sales_order("BEFORE", "main", "2026-11-30"))
    args = ["orders", "import", "--tenant", "demo", "--from-order-service"]
    assert main([*args, "--site", "main", "--from-date", "2026-12-01"]) == 0
    assert set(registered_documents(db_url)) == {"LATER"}


def test_bad_arguments_are_refused(order_service: FakeOrderService) -> None:
    args = ["orders", "import", "--tenant", "demo", "--from-order-service"]
    assert main(args) == 2  # neither ids nor a site
    assert main([*args, "X1", "--site", "main", "--from-date", "2026-12-01"]) == 2
    assert main([*args, "--site", "main"]) == 2
    assert main([*args, "--site", "main", "--from-date", "2026-13-01"]) == 2
    assert order_service.requests() == []


def test_a_failing_listing_is_reported(
    order_service: FakeOrderService, capsys: pytest.CaptureFixture[str]
) -> None:
    order_service.stop()
    args = ["orders", "import", "--tenant", "demo", "--from-order-service"]
    assert main([*args, "--site", "main", "--from-date", "2026-12-01"]) == 1
    assert "listing salesorders failed" in capsys.readouterr().err
