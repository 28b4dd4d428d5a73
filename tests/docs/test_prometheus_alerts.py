"""docs/reference/prometheus-alerts.yml: promtool accepts it, it has a rule for every
alert docs/reference/metrics-and-logs.md lists (same name, same metric), and the rules
fire as described on sample series (`promtool test rules`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"
RULES = DOCS / "prometheus-alerts.yml"

UNIT_TESTS = """
rule_files: [RULES]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pickpack_database_up{instance="a"}'
        values: '1 0 0 0 0'
      - series: 'pickpack_projection_lag_events{instance="a",projection="line_totals"}'
        values: '10 6000x10'
      - series: 'pickpack_outbox_requests{instance="a",status="failed"}'
        values: '0 0 1 1'
      - series: 'pickpack_event_store_partition_headroom_positions{instance="a"}'
        values: '60000000 9000000x20'
    alert_rule_test:
      - eval_time: 4m
        alertname: PickpackDatabaseDown
        exp_alerts:
          - exp_labels: {severity: critical, instance: a}
      - eval_time: 8m
        alertname: PickpackProjectionLag
        exp_alerts:
          - exp_labels: {severity: warning, instance: a, projection: line_totals}
      - eval_time: 3m
        alertname: PickpackRecalculationFailed
        exp_alerts:
          - exp_labels: {severity: warning, instance: a, status: failed}
      - eval_time: 4m
        alertname: PickpackStaleReads
        exp_alerts: []
      - eval_time: 10m
        alertname: PickpackPartitionsRunningOut
        exp_alerts: []
      - eval_time: 17m
        alertname: PickpackPartitionsRunningOut
        exp_alerts:
          - exp_labels: {severity: warning, instance: a}
"""


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus package)")
    return found


def rules() -> dict[str, str]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def test_promtool_accepts_the_rules() -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_listed_alert_has_its_rule() -> None:
    text = (DOCS / "metrics-and-logs.md").read_text()
    table = text.split("### Alerts worth having", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `Pickpack")]
    assert len(rows) >= 7
    have = rules()
    for row in rows:
        name = re.match(r"\| `(\w+)`", row)
        assert name is not None
        assert name.group(1) in have, f"no rule {name.group(1)}"
        metrics = set(re.findall(r"pickpack_[a-z_]+", row.split("|")[2]))
        assert metrics and all(m in have[name.group(1)] for m in metrics), row


def test_the_rules_fire_on_sample_series(tmp_path: Path) -> None:
    # The expressions, durations and labels under test; the annotations' wording is not.
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    bare = tmp_path / "rules.yml"
    bare.write_text(yaml.safe_dump(doc))
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(UNIT_TESTS.replace("RULES", str(bare)))
    ran = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
