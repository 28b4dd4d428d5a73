"""The HAProxy configuration the high-availability guide shows is the file that ships
(docker/ha/haproxy.cfg, which the failover test runs), and HAProxy accepts it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "how-to" / "high-availability.md"
CONFIG = ROOT / "docker" / "ha" / "haproxy.cfg"


def test_the_guide_shows_the_shipped_configuration() -> None:
    blocks = re.findall(r"^```haproxy\n(.*?)^```$", GUIDE.read_text(), re.MULTILINE | re.DOTALL)
    assert blocks == [CONFIG.read_text()]


def test_haproxy_accepts_the_configuration() -> None:
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if binary is None:
        pytest.skip("haproxy is not installed (.ci/run installs it: apt-get install haproxy)")
    checked = subprocess.run([binary, "-c", "-f", str(CONFIG)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
