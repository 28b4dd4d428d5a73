"""Scratch data directories for the benchmarks, removed when the benchmark exits.

Each benchmark starts its own embedded PostgreSQL in a fresh directory: hundreds of
megabytes per run. Left behind, a day of A/B runs filled /tmp with gigabytes, and the
kernel's writeback of one run's files ran into the next run's measurement.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path

# How long to wait for an embedded PostgreSQL to finish stopping (its shutdown
# checkpoint) before removing its directory anyway.
STOP_TIMEOUT_SECONDS = 60.0


def scratch_dir(prefix: str) -> str:
    """A new temporary directory, removed at exit once no PostgreSQL runs in it."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(remove_when_stopped, Path(path))
    return path


def remove_when_stopped(path: Path, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Wait for every server in `path` to stop (postmaster.pid gone), then remove it."""
    deadline = time.monotonic() + timeout
    while any(path.rglob("postmaster.pid")) and time.monotonic() < deadline:
        time.sleep(0.2)
    shutil.rmtree(path, ignore_errors=True)
