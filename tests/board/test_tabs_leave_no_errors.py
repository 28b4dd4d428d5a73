"""A delivery day (`pickpack demo`) watched on boards whose tabs are opened, reloaded and
closed, and by clients that give up on their long-polls: afterwards `GET /metrics`
counts no 5xx (an alert watches that count; docs/reference/metrics-and-logs.md)."""

from __future__ import annotations

import contextlib
import re
import threading
import time

import httpx
from playwright.sync_api import Browser

from cli.main import main
from devtools.harness.service import Service, auth, token
from tests.helpers.browser import OfflineGuard

DAY = "2026-12-02"


def server_errors(service: Service) -> list[str]:
    text = service.client.get("/metrics").text
    return [
        line
        for line in text.splitlines()
        if line.startswith("pickpack_http_requests_total")
        and re.search(r'status="5\d\d"', line)
        and not line.endswith(" 0.0")
    ]


def test_a_demo_day_with_tabs_opened_and_closed_counts_no_server_error(
    service: Service, chromium: Browser
) -> None:
    board = f"{service.url}/board#tenant=demo&token={token('demo')}&site=main&date={DAY}"
    argv = ["demo", "--url", service.url, "--token", token("demo"), "--orders", "6"]
    argv += ["--scanners", "3", "--speed", "1000", "--date", DAY, "--seed", "7"]
    outcome: dict[str, int] = {}
    demo = threading.Thread(target=lambda: outcome.setdefault("code", main(argv)))
    demo.start()
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.route("**/*", OfflineGuard().handle)
    try:
        for _ in range(2):
            tabs = [context.new_page() for _ in range(3)]
            for tab in tabs:
                tab.goto(board)
            time.sleep(0.5)  # each is waiting on its long-poll now
            tabs[0].reload()  # a reloaded tablet
            time.sleep(0.3)
            for tab in tabs:  # closed tablets
                tab.close()
            # And clients that give up on a long-poll and hang up.
            with (
                httpx.Client(base_url=service.url, timeout=0.3) as impatient,
                contextlib.suppress(httpx.TimeoutException),
            ):
                impatient.get(
                    "/pick-pack/demo/changes",
                    params={"after": 10**9, "wait": 20},
                    headers=auth(),
                )
    finally:
        context.close()
        demo.join(timeout=120)
    assert outcome.get("code") == 0, outcome
    # The abandoned requests end quickly once their clients are gone.
    deadline = time.monotonic() + 5
    while service.runtime.bell.waiting() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert server_errors(service) == []
    # The day was really served: the requests counted include the board's and the demo's.
    text = service.client.get("/metrics").text
    assert 'route="/pick-pack/{tenant}/changes"' in text
    assert 'route="/pick-pack/{tenant}/events",status="200"' in text
