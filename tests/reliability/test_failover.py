"""PostgreSQL fails over under load and the service follows, losing nothing.

A real cluster (devtools/ha_cluster.py): etcd, three PostgreSQL 15 nodes managed by
Patroni 4.1.5 with synchronous replication, HAProxy in front (the shipped
docker/ha/haproxy.cfg) checking Patroni's /primary. The service runs on the HAProxy URL
with its default bounds. Eight scanners post distinct scans at a steady pace and resend
each unanswered one (a 503, a timeout, a dropped connection) with the same eventId.

The leader is frozen (every process of it SIGSTOPped, a hung host) and left frozen: the
fault that stopped every scanner before the service bounded its waits. This is the
suite's one run of a whole cluster; the other faults (a killed leader, a killed
postmaster, a switchover), each repeated, are `python -m bench.failover --scenarios kill
freeze switchover` (docs/BENCHMARKS.md, "Failover").

The rules (docs/explanation/guarantees.md, "When PostgreSQL fails over"): every scan
acknowledged is stored once; no answer is a 500; no request is held past the bound
(the write timeout, 5 s, plus slack); scans flow again within 10 s of each promotion.
Patroni's ttl is its minimum, 20 s: the longest part of this test is waiting for it.
The longer runs, with figures: `python -m bench.failover`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devtools.ha_cluster import HACluster
from devtools.harness.faults import headers, indexed_event_ids, make_events, wait_caught_up
from devtools.harness.service import start_service

REQUEST_BOUND = 5.0 + 1.5  # PICKPACK_WRITE_TIMEOUT_SECONDS, plus slack for a shared machine
FLOWING_AGAIN = 10.0  # seconds from a promotion to the first acknowledged scan after it
PROMOTION = 35.0  # seconds from the fault to the new leader: ttl 20 s, loop 1 s, promote


@dataclass
class Load:
    """Scanners posting at a steady pace; every attempt's times and answer."""

    url: str
    clients: int = 8
    pace: float = 0.05  # seconds between one scanner's scans
    attempts: list[tuple[float, float, int]] = field(default_factory=list)  # start, end, status
    acked: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._scanner, args=(i,), daemon=True)
            for i in range(self.clients)
        ]
        for t in threads:
            t.start()
        return threads

    def _scanner(self, i: int) -> None:
        hdrs = headers()
        n = 0
        with httpx.Client(timeout=30) as http:
            while not self.stop.is_set():
                body = make_events(1, prefix=f"s{i}-{n}-")[0]
                n += 1
                while True:  # until answered; a stop lets the scan in hand finish
                    started = time.monotonic()
                    try:
                        status = http.post(
                            f"{self.url}/pick-pack/demo/events", json=body, headers=hdrs
                        ).status_code
                    except httpx.TransportError:
                        status = 0
                    with self.lock:
                        self.attempts.append((started, time.monotonic(), status))
                    if status == 200:
                        with self.lock:
                            self.acked[body["eventId"]] += 1
                        break
                    assert status in (0, 503), f"scan answered {status}"
                    time.sleep(0.1)
                time.sleep(self.pace)

    def first_ok_after(self, moment: float) -> float | None:
        with self.lock:
            ends = [end for start, end, status in self.attempts if status == 200 and start > moment]
        return min(ends) if ends else None


def wait_for_new_leader(cluster: HACluster, old: str, timeout: float = PROMOTION) -> float:
    """When a node other than `old` became the primary (its Patroni says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = cluster.leader()
        if leader is not None and leader.name != old:
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"no new leader within {timeout} s of losing {old}")


def wait_flowing(load: Load, promoted: float) -> float:
    deadline = promoted + FLOWING_AGAIN + 5
    while time.monotonic() < deadline:
        first = load.first_ok_after(promoted)
        if first is not None:
            return first - promoted
        time.sleep(0.1)
    raise AssertionError("scans did not flow again after the promotion")


def test_the_service_follows_a_frozen_leader_losing_nothing(
    ha_cluster: HACluster, tmp_path: Path
) -> None:
    server, thread, runtime, url = start_service(ha_cluster.url, tmp_path)
    load = Load(url)
    threads = load.run()
    frozen: list[int] = []
    try:
        # The faults start once scans flow (a precondition, not a bound: a new cluster's
        # HAProxy may take a few seconds to mark the leader up on a loaded machine), and
        # after two seconds of them.
        deadline = time.monotonic() + 20
        while (first := load.first_ok_after(0)) is None:
            assert time.monotonic() < deadline, "no scan went through before the faults"
            time.sleep(0.1)
        time.sleep(max(0.0, first + 2 - time.monotonic()))

        node, frozen = ha_cluster.freeze_leader()
        froze = time.monotonic()
        promoted = wait_for_new_leader(ha_cluster, node.name)
        after_freeze = wait_flowing(load, promoted)
        time.sleep(1)
    finally:
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
    try:
        statuses = Counter(status for _, _, status in load.attempts)
        held = max(end - start for start, end, _ in load.attempts)
        summary = (
            f"statuses {dict(statuses)}; longest request {held:.1f} s; promotion "
            f"{promoted - froze:.1f} s after the freeze; flowing {after_freeze:.1f} s after it"
        )
        print(summary)  # the figures, for `pytest -s`
        assert set(statuses) <= {0, 200, 503}, summary
        assert statuses[503] > 0, "the faults were never seen: " + summary
        assert held < REQUEST_BOUND, summary
        assert after_freeze < FLOWING_AGAIN, summary
        # Every acknowledged scan is stored once, on the surviving timeline.
        stored = indexed_event_ids(ha_cluster.url)
        # (Each scan was resent until acknowledged: the store holds exactly those.)
        assert set(stored) == set(load.acked), summary
        assert all(stored[e] == 1 for e in load.acked), summary
        assert max(stored.values()) == 1
        wait_caught_up(ha_cluster.url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
        HACluster.thaw(frozen)
