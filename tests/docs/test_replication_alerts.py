"""The replication alerts of docs/reference/prometheus-alerts.yml (from Patroni's metrics)
fire as docs/how-to/high-availability.md describes, on sample series (`promtool test
rules`): a cluster without a synchronous standby, without a primary, and a replica far
behind."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "docs" / "reference" / "prometheus-alerts.yml"
MiB = 1024 * 1024

UNIT_TESTS = f"""
rule_files: [{RULES}]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      # n1 leads; n2 is the synchronous standby until it stops (after 1 minute).
      - series: 'patroni_primary{{scope="pickpack",name="n1"}}'
        values: '1x20'
      - series: 'patroni_primary{{scope="pickpack",name="n2"}}'
        values: '0x20'
      - series: 'patroni_replica{{scope="pickpack",name="n2"}}'
        values: '1x20'
      - series: 'patroni_sync_standby{{scope="pickpack",name="n1"}}'
        values: '0x20'
      - series: 'patroni_sync_standby{{scope="pickpack",name="n2"}}'
        values: '1 1 1 1 0x16'
      - series: 'patroni_xlog_location{{scope="pickpack",name="n1"}}'
        values: '0+{8 * MiB}x20'
      - series: 'patroni_xlog_replayed_location{{scope="pickpack",name="n2"}}'
        values: '0x20'
      # A second cluster without any primary.
      - series: 'patroni_primary{{scope="other",name="m1"}}'
        values: '0x20'
    alert_rule_test:
      - eval_time: 45s
        alertname: PickpackNoSynchronousStandby
        exp_alerts: []
      - eval_time: 2m30s
        alertname: PickpackNoSynchronousStandby
        exp_alerts:
          - exp_labels: {{severity: critical, scope: pickpack}}
            exp_annotations: {{ANNOTATIONS_PickpackNoSynchronousStandby_pickpack_}}
      - eval_time: 1m
        alertname: PickpackNoPrimary
        exp_alerts:
          - exp_labels: {{severity: critical, scope: other}}
            exp_annotations: {{ANNOTATIONS_PickpackNoPrimary_other_}}
      - eval_time: 1m
        alertname: PickpackReplicationLag
        exp_alerts: []
      - eval_time: 4m45s
        alertname: PickpackReplicationLag
        exp_alerts:
          - exp_labels: {{severity: warning, scope: pickpack, name: n2}}
            exp_annotations: {{ANNOTATIONS_PickpackReplicationLag_pickpack_n2}}
"""


def annotations(alert: str, scope: str, name: str) -> str:
    """The rule's annotations as Prometheus renders them for these labels, as YAML."""
    doc = yaml.safe_load(RULES.read_text())
    rule = next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == alert)
    rendered = {
        key: value.replace("{{ $labels.scope }}", scope).replace("{{ $labels.name }}", name)
        for key, value in rule["annotations"].items()
    }
    return json.dumps(rendered)  # JSON is YAML


def unit_tests() -> str:
    text = UNIT_TESTS
    for found in re.finditer(r"\{ANNOTATIONS_(\w+?)_(\w+?)_(\w*)\}", UNIT_TESTS):
        text = text.replace(found.group(0), annotations(*found.groups()))
    return text


def test_the_replication_alerts_fire_on_sample_series(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus package)")
    tests = tmp_path / "replication-tests.yml"
    tests.write_text(unit_tests())
    run = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
