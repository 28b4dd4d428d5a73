"""Browser fixtures: Debian's Chromium, and pages closed to everything but this machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.helpers.browser import OfflineGuard, OfflinePage, chromium_path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module (a launch costs about a second, and more
    on a loaded machine); each test gets its own context, so no cookies or storage cross.

    Not shared across modules: while Playwright's sync API is open it leaves its event loop
    marked as running in the thread, and a later test's `asyncio.run` would refuse to start.
    pytest closes a module's fixtures before the next test when that test is in another
    module (with pytest-xdist too: a worker's next test decides), and no browser test calls
    `asyncio.run`, so the loop is gone before any other module's test runs.
    """
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def offline_page(chromium: Browser) -> Iterator[OfflinePage]:
    """A fresh page (own cookies and storage) at 1280x800 with only 127.0.0.1 reachable."""
    context: BrowserContext = chromium.new_context(viewport={"width": 1280, "height": 800})
    guard = OfflineGuard()
    context.route("**/*", guard.handle)
    page = context.new_page()
    page.set_default_timeout(15_000)
    offline = OfflinePage(page, guard)
    page.on("console", offline.on_console)
    page.on("pageerror", offline.on_page_error)
    try:
        yield offline
    finally:
        context.close()
