"""Stopping is graceful: on SIGTERM `pickpack serve` reports not ready at once, keeps
serving for its drain period with every answer closing its connection, then finishes
what it accepted and exits 0; a second signal stops at once. Nothing acknowledged is
lost either way (docs/explanation/guarantees.md, "Stopping")."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devtools.harness.faults import ServeProcess, headers, indexed_event_ids, make_events
from devtools.harness.service import free_port

DRAIN = 3.0
IN_FLIGHT = 10.0  # what serve gives requests in flight after the drain (cli/stopping.py)


@dataclass
class Outcome:
    sent_at: float
    event_id: str
    status: int | None = None
    closes: bool = False  # the answer said Connection: close
    error: str | None = None


@dataclass
class Scanners:
    """Clients that each post scans over one keep-alive connection (reconnecting only
    when an answer closes it), until told to stop."""

    url: str
    clients: int = 4
    stop: threading.Event = field(default_factory=threading.Event)
    until: float = float("inf")  # no request is sent after this (time.monotonic())
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    bodies: list[list[dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bodies = [make_events(2000, prefix=f"c{n}-") for n in range(self.clients)]

    def answered(self) -> int:
        with self.lock:
            return sum(o.status == 200 for o in self.outcomes)

    def wait_answered(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.answered() < count:
            assert time.monotonic() < deadline, "the scanners got no answers"
            time.sleep(0.05)

    def run(self, number: int) -> None:
        bodies = iter(self.bodies[number])
        with httpx.Client(base_url=self.url, headers=headers(), timeout=30) as client:
            while not self.stop.is_set() and time.monotonic() < self.until:
                body = next(bodies)
                outcome = Outcome(time.monotonic(), body["eventId"])
                try:
                    answer = client.post("/pick-pack/demo/events", json=body)
                    outcome.status = answer.status_code
                    outcome.closes = answer.headers.get("connection", "").lower() == "close"
                except httpx.HTTPError as exc:
                    outcome.error = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    self.outcomes.append(outcome)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        return threads


def test_sigterm_drains_keep_alive_clients_see_no_reset_and_the_process_exits_0(
    db_url: str, tmp_path: Path
) -> None:
    serve = ServeProcess(db_url, free_port(), tmp_path, env={"PICKPACK_DRAIN_SECONDS": str(DRAIN)})
    serve.start()
    assert serve.proc is not None
    scanners = Scanners(serve.url)
    threads = scanners.start()
    try:
        scanners.wait_answered(40)  # every client has a keep-alive connection in use
        sigterm = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        scanners.until = sigterm + DRAIN / 2  # posting on, well inside the drain period
        time.sleep(0.2)
        try:
            ready = httpx.get(f"{serve.url}/ready", timeout=5)
        except httpx.HTTPError as exc:
            raise AssertionError(serve.log.read_text()[-3000:]) from exc
        assert ready.status_code == 503, ready.text  # at once, while it still serves
        assert "draining" in ready.json()["reason"]
        assert httpx.get(f"{serve.url}/health", timeout=5).status_code == 200  # alive
        for thread in threads:
            thread.join(timeout=30)
    finally:
        scanners.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    code = serve.proc.wait(timeout=DRAIN + IN_FLIGHT + 15)
    stopped = time.monotonic() - sigterm
    assert code == 0, serve.log.read_text()[-3000:]
    assert DRAIN <= stopped <= DRAIN + IN_FLIGHT + 15, stopped

    failed = [o for o in scanners.outcomes if o.error is not None or o.status != 200]
    # No reset, no refused connection, no 5xx.
    assert not failed, ([(o.sent_at - sigterm, o.error) for o in failed[:5]], len(failed))
    during = [o for o in scanners.outcomes if o.sent_at > sigterm + 0.1]
    assert len(during) >= 8, f"the scanners posted during the drain: {len(during)}"
    assert all(o.closes for o in during), "answers during the drain close the connection"
    before = [o for o in scanners.outcomes if o.sent_at < sigterm - 0.1]
    assert before and not any(o.closes for o in before), "keep-alive until SIGTERM"
    stored = indexed_event_ids(db_url)
    acked = {o.event_id for o in scanners.outcomes if o.status == 200}
    assert acked <= set(stored), sorted(acked - set(stored))[:5]


def test_a_second_signal_stops_at_once_and_keeps_every_acknowledged_scan(
    db_url: str, tmp_path: Path
) -> None:
    serve = ServeProcess(db_url, free_port(), tmp_path, env={"PICKPACK_DRAIN_SECONDS": "60"})
    serve.start()
    assert serve.proc is not None
    scanners = Scanners(serve.url)
    threads = scanners.start()
    try:
        scanners.wait_answered(20)
        serve.proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # draining (a repeat within a second would count as the same stop)
        assert serve.proc.poll() is None, "still serving inside a 60 s drain"
        second = time.monotonic()
        serve.proc.send_signal(signal.SIGINT)
        code = serve.proc.wait(timeout=10)
        assert time.monotonic() - second < 5, "the second signal stops at once"
    finally:
        scanners.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert code == 0, serve.log.read_text()[-3000:]
    acked = {o.event_id for o in scanners.outcomes if o.status == 200}
    assert acked, "scans were acknowledged before the stop"
    missing = acked - set(indexed_event_ids(db_url))
    assert not missing, sorted(missing)[:5]
