"""The HAProxy configuration the rolling-restart guide shows is the file that ships
(docker/haproxy.cfg), and HAProxy accepts it (tests/reliability/test_rolling.py runs it)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from devtools.harness.fleet import LB_CONFIG, haproxy

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "rolling-restart.md"


def test_the_guide_shows_the_shipped_configuration() -> None:
    blocks = re.findall(r"^```haproxy\n(.*?)^```$", GUIDE.read_text(), re.MULTILINE | re.DOTALL)
    assert blocks == [LB_CONFIG.read_text()]


def test_haproxy_accepts_the_configuration() -> None:
    binary = haproxy()
    if binary is None:
        pytest.skip("haproxy is not installed (.ci/run installs it: apt-get install haproxy)")
    env = {
        **os.environ,
        "LB_BIND": "127.0.0.1:8000",
        "LB_STATS_BIND": "127.0.0.1:8404",
        "REPLICA_A": "127.0.0.1:8001",
        "REPLICA_B": "localhost:8002",
    }
    checked = subprocess.run(
        [binary, "-c", "-f", str(LB_CONFIG)], env=env, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
