"""A database server that stops answering (a frozen host, SIGSTOP) holds no request past the
stated bounds; a frozen first host of a multi-host URL does not stop start-up.

The rules: docs/explanation/guarantees.md ("No request hangs"). A frozen server keeps its
sockets open and its kernel acknowledges what is sent: nothing but the client's own
deadline can tell. The server here is the test's own (tests/faults.py OwnPostgres),
stopped with SIGSTOP (every process of it) and resumed with SIGCONT.
"""

from __future__ import annotations

import io
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.observability import AccessLog
from bootstrap.runtime import Runtime
from devtools.harness.faults import OwnPostgres, indexed_event_ids
from devtools.harness.service import EXAMPLE_EVENT, auth, start_service
from ledger.config import Settings

ROUND_TRIP = 2.0  # PICKPACK_DATABASE_TIMEOUT_SECONDS in this test
WRITE = 2.0  # PICKPACK_WRITE_TIMEOUT_SECONDS
# A scan waits WRITE at most; a read: the pool's checkout (1 s) and its check (2 s), or
# one round trip. One second of slack for a shared, slow machine.
SCAN_BOUND = WRITE + 1.0
READ_BOUND = 1.0 + 2.0 + 1.0
BOUNDS = {
    "PICKPACK_DATABASE_TIMEOUT_SECONDS": str(ROUND_TRIP),
    "PICKPACK_WRITE_TIMEOUT_SECONDS": str(WRITE),
}


def server_processes(pg: OwnPostgres) -> list[psutil.Process]:
    postmaster = pg.db.embedded.get_postmaster_info().process
    return [postmaster, *postmaster.children(recursive=True)]


@contextmanager
def frozen(pg: OwnPostgres) -> Iterator[None]:
    """Every process of the server stopped (a hung host); resumed on leaving."""
    stopped = server_processes(pg)
    for proc in stopped:
        proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for proc in stopped:
            proc.send_signal(signal.SIGCONT)


def timed(call: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()  # type: ignore[operator]
    return response, time.monotonic() - started


def test_a_frozen_server_gets_503_within_the_bound_and_scans_flow_when_it_resumes(
    tmp_path: Path, default_bounds: None
) -> None:
    pg = OwnPostgres()
    lines = io.BytesIO()
    server, thread, runtime, url = start_service(
        pg.url, tmp_path, env=BOUNDS, access_log=AccessLog(lines)
    )
    feed = f"{url}/pick-pack/demo/events"
    try:
        with httpx.Client(timeout=30) as http:
            first = {**EXAMPLE_EVENT, "eventId": "before-freeze"}
            assert http.post(feed, json=first, headers=auth()).status_code == 200
            assert http.get(feed, headers=auth()).status_code == 200
            assert http.get(f"{url}/ready").status_code == 200
            during = {**EXAMPLE_EVENT, "eventId": "during-freeze"}
            with frozen(pg):
                scans = [timed(lambda: http.post(feed, json=during, headers=auth()))]
                scans.append(timed(lambda: http.post(feed, json=during, headers=auth())))
                read = timed(lambda: http.get(feed, headers=auth()))
                ready = timed(lambda: http.get(f"{url}/ready"))
                # A scanner that gives up after 0.5 s: the request is abandoned, and is
                # logged and counted as such (499), not as the 503 nobody received.
                with pytest.raises(httpx.TimeoutException):
                    http.post(feed, json=during, headers=auth(), timeout=0.5)
                time.sleep(WRITE + 0.5)  # its answer is ready by now
                metrics = httpx.get(f"{url}/metrics", timeout=10).text
            for response, seconds in scans:
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "1"
                assert seconds < SCAN_BOUND, f"a scan waited {seconds:.1f} s"
            response, seconds = read
            assert response.status_code == 503, response.text
            assert seconds < READ_BOUND, f"a read waited {seconds:.1f} s"
            response, seconds = ready
            assert response.status_code == 503, response.text
            assert seconds < READ_BOUND, f"/ready waited {seconds:.1f} s"
            # Resumed: the scanner's retry is taken within seconds, and counts once.
            deadline = time.monotonic() + 10
            while (answer := http.post(feed, json=during, headers=auth())).status_code != 200:
                assert answer.status_code == 503, answer.text
                assert time.monotonic() < deadline, "scans did not flow after the resume"
                time.sleep(0.1)
        records = [orjson.loads(line) for line in lines.getvalue().splitlines()]
        abandoned = [r for r in records if r["status"] == 499]
        assert len(abandoned) == 1, records
        assert abandoned[0]["route"] == "/pick-pack/{tenant}/events"
        assert 'pickpack_http_requests_abandoned_total{method="POST",route=' in metrics
        counts = indexed_event_ids(pg.url)
        assert counts["before-freeze"] == 1 and counts["during-freeze"] == 1
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
        pg.stop()


@contextmanager
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel completes the handshake) and never
    answers: what a frozen PostgreSQL host looks like to a client that connects."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def test_start_up_gets_past_a_frozen_first_host_of_a_multi_host_url(
    db_url: str, tmp_path: Path, default_bounds: None
) -> None:
    params = conninfo_to_dict(db_url)
    with black_hole() as port:
        url = make_conninfo(
            db_url,
            host=f"127.0.0.1,{params.get('host', '127.0.0.1')}",
            port=f"{port},{params.get('port', 5432)}",
        )
        settings = Settings.from_env(
            {
                "PICKPACK_DATABASE_URL": url,
                "PICKPACK_DATA_DIR": str(tmp_path / "data"),
                "PICKPACK_JWT_SECRET": "x" * 40,
            }
        )
        started = time.monotonic()
        done: list[Runtime] = []
        worker = threading.Thread(
            target=lambda: done.append(Runtime.start(settings, run_workers=False)), daemon=True
        )
        worker.start()
        worker.join(timeout=60)
        assert done, "start-up hung on the frozen first host"
        runtime = done[0]
        try:
            # Migrations (one connect), then two pools (their first connections in
            # parallel): a few connect timeouts of 2 s, not a hang.
            assert time.monotonic() - started < 30
            with runtime.store.datastore.get_connection() as conn:
                assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
        finally:
            runtime.stop()
