"""Reads from a streaming replica (PICKPACK_DATABASE_REPLICA_URL), against a real hot standby.

The rules (docs/explanation/guarantees.md, "Reads from a replica"): GET /events and an
order's history may come from the replica, at most PICKPACK_DATABASE_REPLICA_MAX_LAG_SECONDS
behind the primary; past that, or while the replica does not answer, they come from the
primary. The change feed and the order reads are never stale: the feed's newest facts and
every order read come from the primary. A replica that stops answering holds no read
past the pool's bounds.

The replica is made to lag on purpose by pausing its replay (pg_wal_replay_pause): it
keeps receiving WAL, so it knows what it has not applied, as a replica does under load.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from devtools.harness import streaming
from devtools.harness.service import EXAMPLE_EVENT, Service, auth, running
from ledger.adapters import replica
from tests.helpers.pack_station import Api, order

MAX_LAG = 3.0  # PICKPACK_DATABASE_REPLICA_MAX_LAG_SECONDS in these tests
# A read while the replica is frozen: the pool's checkout (1 s) or its check of a pooled
# connection (2 s), then the primary; one second of slack for a shared machine.
FROZEN_READ_BOUND = 2.0 + 1.0 + 1.0


@pytest.fixture(scope="module")
def pair() -> Iterator[streaming.StreamingPair]:
    """A primary and a hot standby on loopback ports, run as an unprivileged user. A
    machine without PostgreSQL 15 skips (CI, where .ci/run installs it, fails)."""
    lacking = streaming.missing()
    if lacking:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the replica test needs {lacking}", pytrace=False)
        pytest.skip(f"the replica test needs {lacking}")
    started = streaming.StreamingPair().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def service(
    pair: streaming.StreamingPair, tmp_path: Path, default_bounds: None
) -> Iterator[Service]:
    """The service on a fresh database of the pair, its replica URL the standby's."""
    name = "rr_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pair.primary.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    primary, standby = (
        url.rsplit("/", 1)[0] + "/" + name for url in (pair.primary.url, pair.standby.url)
    )
    pair.caught_up()
    env = {
        "PICKPACK_DATABASE_REPLICA_URL": standby,
        "PICKPACK_DATABASE_REPLICA_MAX_LAG_SECONDS": str(MAX_LAG),
    }
    with running(primary, tmp_path, env) as svc:
        yield svc


def scan(service: Service, event_id: str, timestamp: str) -> None:
    body = {**EXAMPLE_EVENT, "eventId": event_id, "orderNumber": "o1", "productId": "p1",
            "timestamp": timestamp}  # fmt: skip
    resp = service.post_event(body)
    assert resp.status_code == 200, resp.text


def event_ids(service: Service) -> list[str]:
    resp = service.events(timestamp="2000-01-01T00:00:00Z")
    assert resp.status_code == 200, resp.text
    return [item["eventId"] for item in resp.json()]


def history_types(service: Service) -> list[str]:
    resp = service.client.get("/pick-pack/demo/orders/o1/history", headers=auth())
    assert resp.status_code == 200, resp.text
    return [item["type"] for item in resp.json()["items"]]


def whole_feed(service: Service, limit: int) -> list[dict[str, Any]]:
    """GET /changes from the start, page by page, until a page is empty."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        resp = service.client.get(
            "/pick-pack/demo/changes", params={"after": after, "limit": limit}, headers=auth()
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        if not page["items"]:
            return items
        items += page["items"]
        after = page["next"]


def standby_of(service: Service) -> str:
    url = service.runtime.settings.database_replica_url
    assert url is not None
    return url


def export(service: Service, replica_url: str) -> list[dict[str, Any]]:
    """`pickpack events export --tenant demo` with the service's database and replica."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")},
        "PICKPACK_DATABASE_URL": service.runtime.database.url,
        "PICKPACK_DATABASE_REPLICA_URL": replica_url,
        "PICKPACK_DATA_DIR": str(service.runtime.settings.data_dir),
    }
    cmd = [sys.executable, "-m", "cli.main", "events", "export", "--tenant", "demo"]
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=True)
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def replica_reads(service: Service) -> dict[str, float]:
    """pickpack_replica_reads_total by outcome, from GET /metrics."""
    found = re.findall(
        r'^pickpack_replica_reads_total\{outcome="(\w+)"\} (\S+)$',
        service.client.get("/metrics").text,
        re.MULTILINE,
    )
    return {outcome: float(value) for outcome, value in found}


def pause_replay(pair: streaming.StreamingPair, paused: bool) -> None:
    with psycopg.connect(pair.standby.url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


def commit_on_primary(pair: streaming.StreamingPair) -> float:
    """A transaction of its own on the primary, replayed by the standby before this
    returns: the replica's last replayed commit is now. Returns when it committed."""
    with psycopg.connect(pair.primary.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ping (at timestamptz)")
        conn.execute("INSERT INTO ping VALUES (now())")
    at = time.monotonic()
    pair.caught_up()
    return at


def test_lagging_reads_come_from_the_replica_within_the_bound_and_the_rest_from_the_primary(
    pair: streaming.StreamingPair, service: Service
) -> None:
    api = Api(service)
    api.register("o1", order("o1"))
    scan(service, "e1", "2030-01-02T08:00:00Z")
    pair.caught_up()
    assert event_ids(service) == ["e1"]

    committed = commit_on_primary(pair)
    pause_replay(pair, True)
    try:
        # Acknowledged on the primary; the replica has received it but not applied it.
        scan(service, "e2", "2030-01-02T08:01:00Z")
        assert api.patch("o1", "PACKED").status_code == 200
        feed, story = event_ids(service), history_types(service)
        read_within = time.monotonic() - committed
        assert read_within < MAX_LAG, "the reads must run while the replica is within bound"
        # Stale, as documented: the replica's answer, less than MAX_LAG behind.
        assert feed == ["e1"]
        assert "PackingStatusChanged" not in story
        # Never stale: the order read (read-your-writes) and the change feed's head.
        assert api.get("o1").json()["packingStatus"] == "PACKED"
        primary_feed = whole_feed(service, limit=1000)
        types = [i["type"] for i in primary_feed]
        assert types.count("PackingEventRecorded") == 2 and "PackingStatusChanged" in types
        # Page by page, the replica's part and the primary's part join without a gap
        # or a repeat: the same facts as one read on the primary.
        assert whole_feed(service, limit=1) == primary_feed

        # Past the bound the replica is not read: the primary answers, current.
        time.sleep(max(0.0, committed + MAX_LAG + 0.2 - time.monotonic()))
        assert event_ids(service) == ["e1", "e2"]
        assert "PackingStatusChanged" in history_types(service)
        counted = replica_reads(service)
        assert counted["replica"] > 0 and counted["lagging"] > 0, counted
        # `pickpack events export` with the same settings: the same lines as the feed.
        assert export(service, standby_of(service)) == primary_feed
    finally:
        pause_replay(pair, False)
    pair.caught_up()
    assert event_ids(service) == ["e1", "e2"]


def test_a_frozen_replica_holds_no_read_and_is_read_again_once_it_answers(
    pair: streaming.StreamingPair, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replica, "RETRY_SECONDS", 1.0)
    scan(service, "e1", "2030-01-02T08:00:00Z")
    pair.caught_up()
    assert event_ids(service) == ["e1"]
    stopped = pair.standby.pids()
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        scan(service, "e2", "2030-01-02T08:01:00Z")
        started = time.monotonic()
        assert event_ids(service) == ["e1", "e2"]  # the primary's answer
        assert time.monotonic() - started < FROZEN_READ_BOUND
        started = time.monotonic()
        assert event_ids(service) == ["e1", "e2"]
        assert time.monotonic() - started < 0.5, "the replica is passed over meanwhile"
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert replica_reads(service)["unavailable"] >= 2
    before = replica_reads(service)["replica"]
    pair.caught_up()
    deadline = time.monotonic() + 10
    while replica_reads(service)["replica"] == before:
        assert time.monotonic() < deadline, "the replica is read again once it answers"
        assert event_ids(service) == ["e1", "e2"]
        time.sleep(0.2)
