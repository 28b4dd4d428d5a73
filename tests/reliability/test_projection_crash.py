"""A projection worker killed with SIGKILL mid catch-up resumes without double counting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from devtools.harness import fold
from devtools.harness.support import numbered_scan, view_totals
from ledger.adapters.event_store import EventStore
from ledger.domain.packing import Attribution


def tracked(url: str, name: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT notification_id FROM notification_tracking WHERE application_name = %s",
            (name,),
        ).fetchone()
    return int(row[0]) if row else 0


def start_worker(url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PICKPACK_DATABASE_URL": url, "PICKPACK_DATA_DIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "projections", "run", "--batch-size", "200"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_mid_catch_up_then_restart_counts_every_event_once(
    db_url: str, tmp_path: Path
) -> None:
    events = [numbered_scan(i, orders=50) for i in range(20_000)]
    store = EventStore.from_url(db_url)
    try:
        for i in range(0, len(events), 500):
            store.append_packing_events([(e, Attribution("u")) for e in events[i : i + 500]])
        head = store.head()
    finally:
        store.close()

    worker = start_worker(db_url, tmp_path)
    deadline = time.monotonic() + 60
    while tracked(db_url, "line_totals") < head // 4:
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    killed_at = tracked(db_url, "line_totals")
    assert 0 < killed_at < head, "the kill must land in the middle of the catch-up"

    worker = start_worker(db_url, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while tracked(db_url, "line_totals") < head or tracked(db_url, "order_status") < head:
            assert time.monotonic() < deadline, "did not catch up after the restart"
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
    assert view_totals(db_url, "demo") == fold.line_totals(fold.accepted(events))
