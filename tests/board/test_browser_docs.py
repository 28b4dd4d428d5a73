"""/docs and /redoc render their operation lists in headless Chromium with the network
closed to everything but this machine: the API page works in a warehouse without internet."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.openapi.docs import get_swagger_ui_html

from devtools.harness.service import Service
from tests.helpers.browser import OfflinePage, chromium_path

# The spec's 12 operations at least (plus PUT orders, /health, /ready and /metrics).
AT_LEAST_OPERATIONS = 12
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def operations(service: Service) -> int:
    """How many operations /openapi.json describes: each page must show every one."""
    paths = service.client.get("/openapi.json").json()["paths"]
    return sum(len(methods) for methods in paths.values())


def test_swagger_ui_lists_the_operations_offline(
    service: Service, offline_page: OfflinePage, tmp_path: Path
) -> None:
    page = offline_page.page
    page.goto(f"{service.url}/docs")
    scans = page.locator(
        '.opblock-post .opblock-summary-path[data-path="/pick-pack/{tenant}/events"]'
    )
    scans.wait_for()
    assert page.locator(".opblock").count() == operations(service) >= AT_LEAST_OPERATIONS
    assert page.locator(".opblock-get .opblock-summary-path[data-path='/health']").count() == 1
    assert "Pick-Pack Service" in page.locator(".info .title").inner_text()
    page.screenshot(path=tmp_path / "docs.png", full_page=True)
    assert offline_page.blocked == []
    assert offline_page.errors == []


def test_redoc_lists_the_operations_offline(
    service: Service, offline_page: OfflinePage, tmp_path: Path
) -> None:
    page = offline_page.page
    page.goto(f"{service.url}/redoc")
    # The side menu's entries, one per operation (under collapsed tags: in the DOM, hidden).
    menu = page.locator("li[data-item-id*='operation/']")
    menu.first.wait_for(state="attached")
    assert menu.count() == operations(service) >= AT_LEAST_OPERATIONS
    # The scanners' operation, its method and path as ReDoc shows them.
    scans = page.locator("[id$='operation/POST-pick-pack-create-packing-event']").first
    assert "/pick-pack/{tenant}/events" in scans.inner_text()
    page.screenshot(path=tmp_path / "redoc.png", full_page=False)
    assert offline_page.blocked == []
    # ReDoc's one reach outside, Redocly's logo, refused by the page's policy before any
    # request (api/docs_pages.py); nothing else went wrong.
    assert all(REDOCLY_LOGO in e for e in offline_page.errors), offline_page.errors


def test_the_guard_sees_a_page_that_needs_the_internet(offline_page: OfflinePage) -> None:
    """FastAPI's stock page (Swagger UI from a CDN) is caught: the checks above can fail."""
    stock = get_swagger_ui_html(openapi_url="/openapi.json", title="stock").body
    offline_page.page.set_content(bytes(stock).decode(), wait_until="load")
    assert any("cdn.jsdelivr.net" in url for url in offline_page.blocked), offline_page.blocked


def test_a_missing_chromium_skips_and_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        chromium_path(tmp_path / "chromium", environ={})
    with pytest.raises(pytest.skip.Exception):
        chromium_path(tmp_path / "chromium", environ={"CI": "false"})


def test_a_missing_chromium_fails_under_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        chromium_path(tmp_path / "chromium", environ={"CI": "true"})
