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


def test_compose_replicas_profile_runs_the_shipped_configuration_in_front_of_two_replicas() -> None:
    import yaml

    root = LB_CONFIG.parents[1]
    services = yaml.safe_load((root / "compose.yaml").read_text())["services"]
    balancer, second = services["haproxy"], services["pickpack-b"]
    assert balancer["profiles"] == ["replicas"] and second["profiles"] == ["replicas"]
    source, target = balancer["volumes"][0].split(":")[:2]
    assert (root / source).resolve() == LB_CONFIG and target.endswith("haproxy.cfg")
    lines = [line for line in LB_CONFIG.read_text().splitlines() if not line.startswith("#")]
    wanted = set(re.findall(r"\$\{(\w+)\}", "\n".join(lines)))
    assert wanted <= set(balancer["environment"]), wanted - set(balancer["environment"])
    replicas = {balancer["environment"][n].split(":")[0] for n in ("REPLICA_A", "REPLICA_B")}
    assert replicas == {"pickpack", "pickpack-b"} and replicas <= set(services)
    # The second replica is the first one's definition (the same image and settings).
    assert second["environment"] == services["pickpack"]["environment"]
    assert second["stop_grace_period"] == services["pickpack"]["stop_grace_period"]
