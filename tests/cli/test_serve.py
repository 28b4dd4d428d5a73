"""`pickpack serve` on its embedded default: starts, serves, stops cleanly, keeps data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from devtools.harness.service import EXAMPLE_EVENT, free_port


def start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    env["PICKPACK_DATA_DIR"] = str(data_dir)
    env["PICKPACK_DRAIN_SECONDS"] = "0"  # no balancer here: SIGTERM stops without a drain
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(url: str, proc: subprocess.Popen[str], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready within {timeout}s")


def postmaster_running(data_dir: Path) -> bool:
    return (data_dir / "pg" / "postmaster.pid").exists()


def test_serve_prints_a_dev_token_stops_on_sigterm_and_keeps_its_data(
    embedded_root: Path,
) -> None:
    data_dir = embedded_root / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data_dir, port)
    try:
        wait_ready(url, proc, timeout=60)
        assert proc.stdout is not None
        token = ""
        while not token:  # piped, so every line is JSON; the banner's line has the token
            line = proc.stdout.readline()
            if "export TOKEN=" in line:
                token = orjson.loads(line)["msg"].split("export TOKEN=", 1)[1]
        assert oct((data_dir / "jwt-secret").stat().st_mode & 0o777) == "0o600"
        headers = {"Authorization": f"Bearer {token}", "saas-token": "s"}
        posted = httpx.post(f"{url}/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
        assert posted.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not postmaster_running(data_dir), "the embedded PostgreSQL outlived the service"

    again = start(data_dir, port)
    try:
        wait_ready(url, again, timeout=30)
        feed = httpx.get(f"{url}/pick-pack/demo/events", headers=headers)
        assert [e["eventId"] for e in feed.json()] == ["123"]
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0
    assert not postmaster_running(data_dir)
