"""Every connection is bounded in size and time before the app sees it
(api/http_guard.py; docs/explanation/guarantees.md, "One peer never stops the floor").

The service runs on the server `serve` runs (uvicorn with the guarded protocol, the
drain, silent connections left in the kernel) with small limits, so each bound is
reached in a fraction of a second; raw sockets play the hostile peers.
"""

from __future__ import annotations

import functools
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from api import http_guard
from api.app import create_app
from api.http_guard import ConnectionLimits, GuardedHttpToolsProtocol
from bootstrap.runtime import Runtime
from cli.stopping import DrainingServer
from devtools.harness.service import EXAMPLE_EVENT, SECRET, auth, free_port
from ledger.adapters.database import Database
from ledger.config import Settings

LIMITS = ConnectionLimits(
    max_header_bytes=8192, header_timeout=0.5, body_timeout=0.5, max_connections=24
)


@dataclass
class Guarded:
    url: str
    port: int
    runtime: Runtime

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.settimeout(5)
        return sock

    def scan(self, event_id: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/pick-pack/demo/events",
            json={**EXAMPLE_EVENT, "eventId": event_id},
            headers=auth(),
            timeout=5,
        )


@pytest.fixture
def guarded(db_url: str, tmp_path: Path) -> Iterator[Guarded]:
    settings = Settings.from_env(
        {
            "PICKPACK_DATABASE_URL": db_url,
            "PICKPACK_DATA_DIR": str(tmp_path / "data"),
            "PICKPACK_JWT_SECRET": SECRET,
        }
    )
    runtime = Runtime.start(settings, Database(url=db_url), run_workers=False)
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="asyncio",
        http=functools.partial(GuardedHttpToolsProtocol, limits=LIMITS),  # type: ignore[arg-type]
    )
    server = DrainingServer(config, 0.0, defer_silent_seconds=LIMITS.header_timeout)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "service did not start"
        time.sleep(0.01)
    yield Guarded(f"http://127.0.0.1:{port}", port, runtime)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.stop()


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def status(data: bytes) -> int | None:
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(found.group(1)) if found else None


def test_a_head_past_the_bound_is_431_and_the_rest_is_never_read(guarded: Guarded) -> None:
    sock = guarded.connect()
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    with pytest.raises(OSError):  # the server closes; the flood cannot go on for long
        for _ in range(1000):
            sock.sendall(b"a" * 65536)
            sent += 65536
    data = answer(sock)
    assert status(data) == 431, data[:200]
    assert b'"detailInfo":"headers: larger than 8192 bytes"' in data
    assert sent < 64 * 1024 * 1024
    # A head just within the bound is served.
    ok = httpx.get(f"{guarded.url}/health", headers={"X-Pad": "p" * 7000}, timeout=5)
    assert ok.status_code == 200
    assert guarded.scan("after-431").status_code == 200


def test_a_peer_flooding_heads_gets_one_connection_per_head_deadline(guarded: Guarded) -> None:
    """After its 431 a flooding connection is read no more and held until its head
    deadline (a lingering close), so a peer that reconnects whenever it is closed gets
    one connection through per deadline, not one per 8 KiB of flood: each of those
    would cost the process an accept, a protocol and a head's parsing."""
    seconds = 1.5
    answers: list[bytes] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        sock = guarded.connect()
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(1000):
                sock.sendall(b"a" * 65536)
        except OSError:
            pass
        answers.append(answer(sock))  # the answer was not lost to a reset
        sock.close()
    assert len(answers) <= seconds / LIMITS.header_timeout + 2, len(answers)
    for data in answers:
        assert status(data) == 431, data[:200]
        assert b'"detailInfo":"headers: larger than 8192 bytes"' in data
    assert guarded.scan("after-flood").status_code == 200


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="Linux's TCP_DEFER_ACCEPT")
def test_connections_that_send_nothing_wait_in_the_kernel_not_the_process(
    guarded: Guarded,
) -> None:
    """Twice the cap of connections that send nothing: none reaches the process before
    the head deadline (the kernel hands them over after 1 s, the 0.5 s deadline
    rounded up), so none is accepted or evicted; one that speaks is served at once."""
    evicted = http_guard.REFUSED["evicted"]
    silent = [guarded.connect() for _ in range(2 * LIMITS.max_connections)]
    time.sleep(0.5)
    assert http_guard.REFUSED["evicted"] == evicted
    talker = silent.pop()
    talker.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status(answer(talker)) == 200
    assert guarded.scan("beside-silent").status_code == 200
    for sock in silent:
        sock.close()


def test_a_head_that_never_ends_is_408_and_a_silent_connection_is_closed(
    guarded: Guarded,
) -> None:
    silent, partial = guarded.connect(), guarded.connect()
    partial.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    started = time.monotonic()
    assert answer(silent) == b""
    data = answer(partial)
    assert status(data) == 408, data
    assert b"headers: not complete within 0.5 s" in data
    assert time.monotonic() - started < 3


def test_a_body_that_trickles_is_408_after_its_deadline(guarded: Guarded) -> None:
    sock = guarded.connect()
    head = (
        "POST /pick-pack/demo/events HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {auth()['Authorization']}\r\nsaas-token: s\r\n"
        "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"eventId"')
    started = time.monotonic()
    data = b""
    try:
        for _ in range(40):  # a byte every 0.1 s: each read is quick, the whole is not
            sock.sendall(b" ")
            time.sleep(0.1)
    except OSError:
        pass
    data = answer(sock)
    assert status(data) == 408, data
    assert b"body: not complete within 0.5 s" in data
    assert time.monotonic() - started < 3
    # The request observer counts what the client was sent, not the app's answer.
    metrics = httpx.get(f"{guarded.url}/metrics", timeout=5).text
    assert re.search(r'pickpack_http_requests_total\{.*status="408"\} 1\.0', metrics), metrics
    assert 'pickpack_http_refused_total{reason="body_timeout"}' in metrics
    assert not re.search(r'status="5\d\d"', metrics)


def test_idle_connections_past_the_cap_make_room_for_scanners(guarded: Guarded) -> None:
    refused_before = http_guard.REFUSED["evicted"]
    idle = []
    for _ in range(LIMITS.max_connections + 10):  # each sent half a request line
        sock = guarded.connect()
        sock.sendall(b"GET /hea")
        idle.append(sock)
    time.sleep(0.1)
    # Every new scanner connection gets in: the oldest idle ones were closed for it.
    for n in range(5):
        assert guarded.scan(f"in-{n}").status_code == 200
    assert http_guard.REFUSED["evicted"] - refused_before >= 10  # at least the surplus
    assert answer(idle[0]) == b""  # the oldest was closed without a word
    for sock in idle:
        sock.close()


def test_past_the_cap_with_every_connection_busy_a_newcomer_gets_503(guarded: Guarded) -> None:
    head = (
        "GET /pick-pack/demo/changes?after=999999&wait=5 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {auth()['Authorization']}\r\n\r\n"
    )
    busy = []
    for _ in range(LIMITS.max_connections):
        sock = guarded.connect()
        sock.sendall(head.encode())
        busy.append(sock)
    time.sleep(0.3)
    newcomer = guarded.connect()
    data = answer(newcomer)
    assert status(data) == 503, data
    assert b"retry-after: 1" in data.lower()
    assert b"more than 24 open" in data
    for sock in busy:
        sock.close()
    # Once they are gone, connections are served again.
    time.sleep(0.3)
    assert guarded.scan("after-503").status_code == 200
