"""Headless Chromium for browser tests: Debian's Chromium driven by Playwright for Python.

The browser is the system's (`apt-get install chromium`), launched by path: Playwright's
own browser download (`playwright install`) is never used. Without it the tests skip and
say how to get it, except under CI (`CI=true`), where a skipped browser test would let a
broken page pass: there a missing Chromium fails them. `.ci/run` installs it.

Pages come with the network closed to everything but this machine (`OfflineGuard`): a
page that needs the internet shows as blocked requests the test can assert on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    ConsoleMessage,
    Error,
    Page,
    Route,
)

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Not network requests: what a page builds in memory.
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})


def chromium_path(chromium: Path = CHROMIUM, environ: dict[str, str] | None = None) -> Path:
    """The Chromium to launch; skips the test when it is missing, fails it under CI."""
    if chromium.is_file():
        return chromium
    env = os.environ if environ is None else environ
    message = (
        f"no Chromium at {chromium}: browser tests need Debian's "
        "(`apt-get update && apt-get install -y chromium`); never `playwright install`"
    )
    if env.get("CI") == "true":
        pytest.fail(f"{message}. CI must run the browser tests, not skip them", pytrace=False)
    pytest.skip(message)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOCAL_HOSTS


@dataclass
class OfflineGuard:
    """Aborts every request that would leave this machine, and remembers it."""

    blocked: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


@dataclass
class OfflinePage:
    """A page, the requests its guard blocked, and what went wrong in it: console errors
    (a refused Content-Security-Policy load is one) and uncaught exceptions."""

    page: Page
    guard: OfflineGuard
    errors: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> list[str]:
        return self.guard.blocked

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error}")
