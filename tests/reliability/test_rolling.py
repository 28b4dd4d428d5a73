"""A rolling upgrade behind HAProxy fails no scan.

The previous release's code (its commit, from this checkout's history) serves beside
this one on the schema this one migrated, behind the shipped HAProxy configuration
(docker/haproxy.cfg) that checks GET /ready; then the old replica is replaced by the new
code, while scanners post through the balancer without retrying. Every request is
answered 200 and every answered scan is stored. A restart of this release's replicas
(the drain) is tests/reliability/test_drain.py; bench/rolling.py measures restarts and
the upgrade with more load and longer (docs/BENCHMARKS.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devtools.harness.faults import indexed_event_ids
from devtools.harness.fleet import (
    PREVIOUS_RELEASE,
    Balancer,
    Load,
    extract_release,
    failures,
    haproxy,
    replica,
    restart,
)
from devtools.harness.service import free_port
from ledger.adapters.migrate import migrate

DRAIN = {"PICKPACK_DRAIN_SECONDS": "2"}


def test_an_upgrade_from_the_previous_release_behind_haproxy_fails_no_scan(
    db_url: str, tmp_path: Path
) -> None:
    if haproxy() is None:
        pytest.skip("haproxy is not installed (.ci/run installs it: apt-get install haproxy)")
    try:
        old_tree = extract_release(PREVIOUS_RELEASE, tmp_path / "previous")
    except LookupError as exc:
        pytest.skip(f"{exc}: clone with history (not --depth 1) to run this test")
    migrate(db_url)  # this release's schema, applied while the previous release runs
    ports = {"a": free_port(), "b": free_port()}
    old = replica(db_url, ports["a"], tmp_path / "a", DRAIN, root=old_tree)
    new = replica(db_url, ports["b"], tmp_path / "b", DRAIN)
    balancer = Balancer(free_port(), free_port(), ports, tmp_path / "haproxy.log")
    replicas = [old, new]
    load: Load | None = None
    try:
        old.start()
        new.start()
        balancer.start()
        balancer.wait("a", "UP")
        balancer.wait("b", "UP")
        load = Load(balancer.url, clients=4).start()
        time.sleep(1.5)
        served = balancer.answered()
        assert served["a"] > 0 and served["b"] > 0, f"both releases served scans: {served}"
        replicas[0] = restart(old, balancer, "a", root=new.root)  # the upgrade
        time.sleep(1.0)
        outcomes = load.stop()
    finally:
        if load is not None:
            load.stop()
        balancer.stop()
        for process in replicas:
            process.stop()
    assert not failures(outcomes), failures(outcomes)[:10]
    acked = {o.event_id for o in outcomes if o.status == 200}
    assert len(acked) >= 100, f"only {len(acked)} scans were posted"
    missing = acked - set(indexed_event_ids(db_url))
    assert not missing, sorted(missing)[:10]
