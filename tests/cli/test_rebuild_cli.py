"""`pickpack projections rebuild` and `status`, as an operator runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench.seed import seed, seed_scan
from devtools.harness import fold
from devtools.harness.support import view_totals, wait_until


def cli(db_url: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PICKPACK_DATABASE_URL": db_url, "PICKPACK_DATA_DIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def rebuild_position(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT min(position) FROM projection_rebuilds").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def test_a_killed_rebuild_resumes_and_swaps_in_views_equal_to_the_fold(
    db_url: str, tmp_path: Path
) -> None:
    n = 60_000
    seed(db_url, n, tenant="demo", orders=300, products=4, chunk=20_000)
    expected = fold.line_totals(seed_scan(i, "demo", 300, 4) for i in range(n))

    first = cli(
        db_url,
        tmp_path,
        "projections",
        "rebuild",
        "--all",
        "--chunk",
        "500",
        "--flush-every",
        "1000",
    )
    wait_until(lambda: rebuild_position(db_url) > 0 or first.poll() is not None, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = rebuild_position(db_url)
    assert 0 < killed_at < n, "the kill must land mid-rebuild"
    assert view_totals(db_url) == {}, "readers never see a half-built view"

    second = cli(db_url, tmp_path, "projections", "rebuild", "--all")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    assert "resumed from" in out
    assert view_totals(db_url) == expected

    status = cli(db_url, tmp_path, "projections", "status")
    text, _ = status.communicate(timeout=60)
    assert status.returncode == 0, text
    for name in ("line_totals", "order_status"):
        line = next(ln for ln in text.splitlines() if ln.startswith(name))
        assert line.split()[1:4] == [f"{n:,}", f"{n:,}", "0"], line


def test_rebuild_while_the_service_serves_keeps_reads_whole(service, tmp_path: Path) -> None:
    from devtools.harness.service import EXAMPLE_EVENT

    url = service.runtime.database.url
    for i in range(200):
        body = {**EXAMPLE_EVENT, "eventId": f"r{i}", "orderNumber": f"o{i % 5}", "packedAmount": 1}
        assert service.post_event(body).status_code == 200
    wait_until(lambda: sum(v[1] for v in view_totals(url).values()) == 200)
    proc = cli(url, tmp_path, "projections", "rebuild", "--all", "--chunk", "10")
    seen = set()
    while proc.poll() is None:
        seen.add(sum(v[1] for v in view_totals(url).values()))
        time.sleep(0.005)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    assert seen <= {200}, f"a reader saw a partial view: {seen}"
    assert sum(v[1] for v in view_totals(url).values()) == 200
