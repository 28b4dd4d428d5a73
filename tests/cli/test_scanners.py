"""The scanners the compose smoke scripts run (devtools/scanners.py): they post scans the
service stores, resend a scan with the same eventId until it is answered 200, and the
check finds an acknowledged scan that is missing or stored twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from devtools.harness.service import Service, token

ROOT = Path(__file__).resolve().parents[2]


def scanners(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.scanners", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_for(seconds: float, url: str, out: Path, clients: int = 2) -> tuple[int, str]:
    proc = scanners(
        "run", "--url", url, "--token", token("smoke"), "--tenant", "smoke",
        "--prefix", "t-", "--out", str(out), "--clients", str(clients), "--pause", "0",
    )  # fmt: skip
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    return proc.returncode, output


def check(out: Path, stored: dict[str, int]) -> tuple[int, str]:
    (out / "stored").write_text("".join(f"{e}|{n}\n" for e, n in stored.items()))
    done = subprocess.run(
        [sys.executable, "-m", "devtools.scanners", "check", "--out", str(out),
         "--stored", str(out / "stored")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode, done.stdout


def test_the_scanners_post_scans_the_service_stores_once(
    service: Service, db_url: str, tmp_path: Path
) -> None:
    code, output = run_for(1.5, service.url, tmp_path)
    assert code == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    acked = (tmp_path / "acked").read_text().split()
    assert summary["scans_acked"] == len(acked) > 0 and summary["failed_scans"] == 0
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT event_id, count(*) FROM packing_events WHERE tenant = 'smoke' GROUP BY 1"
        ).fetchall()
    stored = {event_id: int(n) for event_id, n in rows}
    assert set(acked) <= set(stored)
    code, report = check(tmp_path, stored)
    assert code == 0 and f"acked {len(acked)}, of them stored {len(acked)}, lost 0" in report

    # One acknowledged scan missing, or one stored twice: the check fails and says so.
    missing = dict(stored)
    del missing[acked[0]]
    code, report = check(tmp_path, missing)
    assert code == 1 and "lost 1" in report and acked[0] in report
    code, report = check(tmp_path, {**stored, acked[0]: 2})
    assert code == 1 and "stored more than once 1" in report


class Flaky(BaseHTTPRequestHandler):
    """Answers every second POST 503 (Retry-After: 0), the others 200; records the
    eventIds."""

    bodies: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        Flaky.bodies.append(json.loads(body)["eventId"])
        failing = len(Flaky.bodies) % 2 == 1
        self.send_response(503 if failing else 200)
        if failing:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    Flaky.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_scan_not_answered_200_is_sent_again_with_its_event_id(
    flaky: str, tmp_path: Path
) -> None:
    code, output = run_for(1.0, flaky, tmp_path, clients=1)
    assert code == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    acked = (tmp_path / "acked").read_text().split()
    # Each scan was refused once, then sent again, same eventId, and acknowledged.
    assert summary["failed_requests"] == {"503": summary["scans_resent"]} and acked
    assert summary["failed_scans"] == 0
    for event_id in acked:
        assert Flaky.bodies.count(event_id) == 2
