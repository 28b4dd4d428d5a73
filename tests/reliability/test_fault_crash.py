"""Crash: `pickpack serve` SIGKILLed mid-ingest loses no acknowledged event and records none twice.

A heavier variant (20,000 events, several kills): `python -m bench.chaos crash`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from devtools.harness import fold
from devtools.harness.faults import (
    ScanReport,
    ServeProcess,
    indexed_event_ids,
    make_events,
    scan,
    stored_packing_events,
    wait_caught_up,
)
from devtools.harness.service import free_port
from devtools.harness.support import scan_of_body, view_totals

EVENTS = 2_000
CLIENTS = 16
KILL_AFTER_ACKS = 700


def test_sigkill_mid_ingest_then_restart_keeps_every_acknowledged_event_exactly_once(
    db_url: str, tmp_path: Path
) -> None:
    serve = ServeProcess(db_url, free_port(), tmp_path / "serve")
    serve.start()
    bodies = make_events(EVENTS)
    report = ScanReport()
    killed = threading.Event()
    acks_at_kill: list[int] = []
    in_flight_at_kill: list[int] = []
    down_for: list[float] = []

    def kill_and_restart() -> None:
        """SIGKILL once enough events are acknowledged, then start it on the same database."""
        # Requests started and not yet answered (read just before the kill: racy, a figure).
        in_flight_at_kill.append(report.attempts - report.retries - len(report.acked))
        acks_at_kill.append(len(report.acked))
        serve.kill()
        killed_at = time.monotonic()
        serve.start()
        down_for.append(time.monotonic() - killed_at)

    restart: list[threading.Thread] = []

    once = threading.Lock()

    def on_answer(r: ScanReport) -> None:  # runs in the scanner threads
        if len(r.acked) >= KILL_AFTER_ACKS and not killed.is_set():
            with once:
                if killed.is_set():
                    return
                killed.set()
                restart.append(threading.Thread(target=kill_and_restart))
                restart[0].start()

    try:
        started = time.monotonic()
        scan(bodies, [serve.url], clients=CLIENTS, report=report, on_answer=on_answer)
        took = time.monotonic() - started
        assert restart, "the kill never happened"
        restart[0].join(timeout=60)
        caught_up = wait_caught_up(db_url)
    finally:
        serve.stop()

    stored = stored_packing_events(db_url)
    per_id = Counter(e.event_id for e in stored)
    acked_after_kill = len(report.acked) - acks_at_kill[0]
    print(
        f"\ncrash: {EVENTS} events by {CLIENTS} clients, 1 SIGKILL after {acks_at_kill[0]} "
        f"acknowledgements ({in_flight_at_kill[0]} requests in flight), serve back in "
        f"{down_for[0]:.1f}s; {report.attempts} attempts, {report.retries} retries "
        f"({report.connection_errors} connection errors), {len(report.ok)} answered 200 "
        f"({acked_after_kill} after the kill); stored {len(stored)} events, "
        f"{len(per_id)} distinct eventIds; projections caught up {caught_up:.2f}s after "
        f"the last answer; ingest took {took:.1f}s"
    )
    assert report.connection_errors > 0, "the kill must land while requests are in flight"
    assert report.ok == {b["eventId"] for b in bodies}, "every event must end with a 200"
    duplicates = {e: n for e, n in per_id.items() if n > 1}
    assert not duplicates, f"eventIds stored more than once: {sorted(duplicates)[:10]}"
    assert set(per_id) == report.ok, "a stored eventId must be one that was acknowledged"
    assert indexed_event_ids(db_url) == Counter(report.ok), "the eventId index agrees"
    assert view_totals(db_url, "demo") == fold.line_totals(stored)
    assert view_totals(db_url, "demo") == fold.line_totals(
        fold.accepted(scan_of_body(b) for b in bodies)
    )
