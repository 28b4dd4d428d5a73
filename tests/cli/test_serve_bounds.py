"""`pickpack serve` bounds every connection before authentication, as configured, keeps
its connection cap below the open-file limit, and leaves connections that send nothing
in the kernel (api/http_guard.py)."""

from __future__ import annotations

import os
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devtools.harness.service import SECRET, free_port


def test_serve_answers_431_closes_stalled_heads_and_fits_the_open_file_limit(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    env |= {
        "PICKPACK_DATABASE_URL": db_url,
        "PICKPACK_DATA_DIR": str(tmp_path / "data"),
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_HEADER_TIMEOUT_SECONDS": "1",
        "PICKPACK_LOG_FORMAT": "json",
    }

    def at_most_256_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=at_most_256_files,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port)) as flood:
            flood.settimeout(5)
            flood.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                for _ in range(64):
                    flood.sendall(b"a" * 65536)
            except OSError:
                pass
            assert flood.recv(100).startswith(b"HTTP/1.1 431 ")
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            stalled.settimeout(5)
            started = time.monotonic()
            stalled.sendall(b"GET /health HTTP/1.1\r\n")
            assert stalled.recv(100).startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - started < 3
        # 80 connections that send nothing, past the cap of 56: none reaches the guard
        # before the kernel hands it over (after 1 s, the head deadline), so none is
        # closed to make room (without TCP_DEFER_ACCEPT, 24 would be at once).
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
        time.sleep(0.5)
        closed, _, _ = select.select(silent, [], [], 0)
        assert (len(closed) == 0) == hasattr(socket, "TCP_DEFER_ACCEPT"), len(closed)
        for sock in silent:
            sock.close()
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    # 1,000 connections do not fit 256 files with room for the rest: the cap says so
    # (56 connections are kept open).
    assert "PICKPACK_MAX_CONNECTIONS=1000 does not fit the open-file limit of 256" in output
    assert "at most 56 connections are kept open" in output
