"""A client that leaves (a board tab closed or reloaded, a scanner that timed out) is
not a server error: its long-poll or stream ends quietly, and /metrics counts no 5xx."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from urllib.parse import urlsplit

import httpx

from devtools.harness.service import EXAMPLE_EVENT, Service, auth
from devtools.harness.support import wait_until

CHANGES = "/pick-pack/demo/changes"


def server_errors(service: Service) -> list[str]:
    """The /metrics request counters with a 5xx status (and a count above zero)."""
    text = service.client.get("/metrics").text
    return [
        line
        for line in text.splitlines()
        if line.startswith("pickpack_http_requests_total")
        and re.search(r'status="5\d\d"', line)
        and not line.endswith(" 0.0")
    ]


def abandon(service: Service, path: str, headers: dict[str, str], after: float) -> None:
    """Send a GET, read nothing of the answer, and close the socket after `after` s."""
    parts = urlsplit(service.url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        time.sleep(after)


def test_abandoned_long_polls_and_streams_end_without_a_server_error(service: Service) -> None:
    resp = service.post_event(EXAMPLE_EVENT)
    assert resp.status_code == 200, resp.text
    head = service.client.get(CHANGES, headers=auth()).json()["next"]
    for n in range(5):  # tabs closed at once and a little later
        abandon(service, f"{CHANGES}?after={head}&wait=30", auth(), 0.05 * n)
    with httpx.Client(base_url=service.url, timeout=0.3) as impatient:
        for _ in range(3):  # a client that times out and hangs up
            with contextlib.suppress(httpx.ReadTimeout):
                impatient.get(f"{CHANGES}?after={head}&wait=30", headers=auth())
    for n in range(3):  # streams whose reader leaves
        abandon(service, CHANGES, {**auth(), "Accept": "text/event-stream"}, 0.1 * n)
    wait_until(lambda: service.runtime.bell.waiting() == 0, timeout=5)
    time.sleep(0.2)  # the abandoned requests' last steps run after their waiters left
    assert server_errors(service) == []
