"""What a supervisor reads on the board's cards, for every order shape: the figures add
up. Expectations come from docs/explanation/semantics.md ("Progress is per line, in the
line's unit", "Holding areas are places") and the issue, not from the page's code:

- a line's figures in its own unit ("313 g of 301 g"), an order's progress as lines done
  out of lines, never pieces added to grams;
- a weighed line packed heavier or lighter than ordered says "over" or "short", and is
  done (the packingStatus rule), not "missing";
- the day's cancelled orders stay on the board, counted: the status counts add up to the
  day's orders;
- "No orders" only once the service answered with none; before that, a loading state;
- times from when the ledger recorded a scan, the scanner's own clock shown beside it;
- holding areas numbered per site and delivery date from 1.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, Route

from devtools.harness.service import Service, auth, token
from devtools.harness.support import packing_event, scan_body
from tests.helpers.browser import OfflinePage

DAY = "2026-12-01"


def line(product: str, unit: str, total: int, name: str, weighed: bool = False) -> dict[str, Any]:
    return {
        "productId": product,
        "productName": name,
        "orderUnit": unit,
        "totalCount": total,
        "weightDependent": weighed,
    }


def register(service: Service, order_id: str, *lines: dict[str, Any], site: str = "main") -> None:
    document = {
        "id": order_id,
        "siteCode": site,
        "customer": {"firstName": "Ana", "lastName": "Meyer"},
        "delivery": {"deliveryTimeModel": {"deliveryDate": DAY}},
        "entries": [{"entryId": f"e{i}", **entry} for i, entry in enumerate(lines, 1)],
    }
    answer = service.client.put(f"/pick-pack/demo/orders/{order_id}", json=document, headers=auth())
    assert answer.status_code == 200, answer.text


def scan(
    service: Service,
    event_id: str,
    order_id: str,
    product: str,
    unit: str,
    packed: int,
    canceled: int = 0,
    at: datetime | None = None,
) -> None:
    moment = at or datetime.now(UTC)
    body = scan_body(
        packing_event(
            event_id,
            order_id=order_id,
            product_id=product,
            unit=unit,
            event_time=moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            picked=packed,
            packed=packed,
            canceled=canceled,
        )
    )
    answer = service.post_event(body)
    assert answer.status_code == 200, answer.text


def call(service: Service, method: str, path: str, **kw: Any) -> None:
    headers = {**auth(), "saas-token": "t"}
    answer = service.client.request(method, f"/pick-pack/demo/{path}", headers=headers, **kw)
    assert answer.status_code == 200, answer.text


def board_url(service: Service) -> str:
    return f"{service.url}/board#tenant=demo&token={token('demo')}&site=main&date={DAY}"


def card_text(page: Page, order_id: str) -> str:
    return page.locator(f'.card[data-order-id="{order_id}"]').inner_text()


def line_text(page: Page, order_id: str, product: str) -> str:
    return page.locator(
        f'.card[data-order-id="{order_id}"] .line[data-product-id="{product}"]'
    ).inner_text()


def count(page: Page, name: str) -> int:
    return int(page.locator(f"#count-{name}").get_attribute("data-count") or "-1")


def settled(page: Page, condition: str) -> None:
    page.wait_for_function(f"() => ({condition})", polling=50, timeout=10_000)


def test_cards_show_each_line_in_its_unit_and_the_day_adds_up(
    service: Service, offline_page: OfflinePage
) -> None:
    # An order of pieces and a weighed line packed 12 g over, one short by 2 g, one not
    # started in kilograms and pieces, one of pieces cancelled half-way.
    register(
        service,
        "mix-over",
        line("apple", "H87", 8, "Gala apples"),
        line("banana", "H87", 3, "Bananas"),
        line("salmon", "GRM", 301, "Salmon fillet", weighed=True),
    )
    register(
        service,
        "mix-short",
        line("ham", "GRM", 282, "Sliced ham", weighed=True),
        line("eggs", "H87", 2, "Eggs"),
    )
    register(
        service,
        "mix-open",
        line("potatoes", "KGM", 4, "Potatoes", weighed=True),
        line("milk", "H87", 2, "Milk"),
    )
    register(service, "gone", line("apple", "H87", 5, "Gala apples"))
    register(service, "north-1", line("apple", "H87", 1, "Gala apples"), site="north")

    scan(service, "s1", "mix-over", "apple", "H87", 8)
    scan(service, "s2", "mix-over", "banana", "H87", 2, canceled=1)
    scan(service, "s3", "mix-over", "salmon", "GRM", 313)
    scan(service, "s4", "mix-short", "ham", "GRM", 280)
    scan(service, "s5", "mix-short", "eggs", "H87", 2)
    scan(service, "s6", "mix-open", "milk", "H87", 1)
    scan(service, "s7", "gone", "apple", "H87", 2)
    scan(service, "s8", "north-1", "apple", "H87", 1)
    call(service, "PATCH", "orders/gone", json={"packingStatus": "CANCELLED"})
    call(service, "POST", "orders/north-1/finish")  # another site's first holding area
    call(service, "POST", "orders/mix-short/finish")
    call(service, "POST", "orders/mix-over/finish")

    page = offline_page.page
    page.goto(board_url(service))
    settled(page, "document.querySelectorAll('.card').length === 4")
    settled(page, "document.getElementById('count-total')?.dataset.count === '4'")

    over = card_text(page, "mix-over")
    assert "3 of 3 lines done" in over
    assert "313 g of 301 g" in line_text(page, "mix-over", "salmon")
    assert "12 g over" in line_text(page, "mix-over", "salmon")
    assert "8 of 8" in line_text(page, "mix-over", "apple")
    assert "2 of 3 · 1 cancelled" in line_text(page, "mix-over", "banana")
    for summed in ("324", "312", "323"):  # pieces added to grams, any way round
        assert summed not in over, over

    short = card_text(page, "mix-short")
    assert "2 of 2 lines done" in short
    assert "280 g of 282 g · 2 g short" in line_text(page, "mix-short", "ham")
    assert "missing" not in short.lower()

    opened = card_text(page, "mix-open")
    assert "0 of 2 lines done" in opened
    assert "0 kg of 4 kg" in line_text(page, "mix-open", "potatoes")
    assert "1 of 2" in line_text(page, "mix-open", "milk")

    gone = page.locator('.card[data-order-id="gone"]')
    assert gone.get_attribute("data-status") == "CANCELLED"
    assert "Cancelled" in gone.inner_text()

    # Per site and delivery date from 1, in the order this site's orders were packed.
    assert "Holding area 1" in short and "Holding area 2" in over

    counts = {s: count(page, s) for s in ("INITIAL", "IN_PROGRESS", "PRE_PACKED", "PACKED")}
    assert count(page, "CANCELLED") == 1
    assert counts["PACKED"] == 2 and counts["IN_PROGRESS"] == 1
    assert sum(counts.values()) + count(page, "CANCELLED") == count(page, "total") == 4
    assert offline_page.blocked == []


def test_the_board_says_it_loads_until_the_first_answer(
    service: Service, offline_page: OfflinePage
) -> None:
    register(service, "o-1", line("apple", "H87", 2, "Gala apples"))
    page = offline_page.page
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/pick-pack/demo/orders?*", hold)
    page.goto(board_url(service))
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the board asked for the packlist"
    page.wait_for_timeout(300)  # what the page shows while the answer is on its way
    waiting = page.locator("#empty").inner_text()
    assert "No orders" not in waiting and "Loading" in waiting, waiting
    assert page.locator("#count-total").inner_text().strip().startswith("\u2013")  # no count yet
    for route in held:
        route.continue_()
    page.unroute("**/pick-pack/demo/orders?*", hold)
    settled(page, "document.querySelectorAll('.card').length === 1")
    assert page.locator("#empty").is_hidden()


def test_times_are_when_the_ledger_recorded_the_scan_not_the_scanners_clock(
    service: Service, offline_page: OfflinePage
) -> None:
    register(service, "o-1", line("apple", "H87", 4, "Gala apples"))
    register(service, "o-2", line("apple", "H87", 4, "Gala apples"))
    # A scanner whose clock is three hours behind, and one that is right.
    scan(service, "late-clock", "o-1", "apple", "H87", 1, at=datetime.now(UTC) - timedelta(hours=3))
    scan(service, "good-clock", "o-2", "apple", "H87", 1)
    page = offline_page.page
    page.goto(board_url(service))
    settled(page, "document.querySelectorAll('.card .since').length === 2")
    settled(page, "document.getElementById('rate-text').textContent.startsWith('2 scans')")
    first = page.locator('.card[data-order-id="o-1"] .since').inner_text()
    assert first.startswith("First scan under a minute ago"), first
    assert "scanner clock said" in first  # its own time, shown where it disagrees
    right = page.locator('.card[data-order-id="o-2"] .since').inner_text()
    assert right == "First scan under a minute ago", right
    assert "2 scans in the last hour" in page.locator("#rate-text").inner_text()
