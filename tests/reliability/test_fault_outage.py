"""Database outage: the service answers 503 fast while its PostgreSQL is down, recovers by
itself within 5 s of its return, and loses no acknowledged event.

The PostgreSQL here is the test's own (devtools/harness/faults.py OwnPostgres): it is crashed with
`pg_ctl stop -m immediate` and started again on the same data directory.
A longer variant: `python -m bench.chaos outage`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from api.errors import UNAVAILABLE_DETAIL
from devtools.harness import fold
from devtools.harness.faults import (
    OwnPostgres,
    headers,
    indexed_event_ids,
    make_events,
    scan,
    stored_packing_events,
    wait_caught_up,
)
from devtools.harness.service import start_service
from devtools.harness.support import scan_of_body, view_totals

FAST_503 = 2.0  # seconds: an outage answer must come well before any client's 30 s timeout
RECOVERY = 5.0  # seconds from the database answering again to the first 200
UNAVAILABLE = {"code": 503, "message": "Service Unavailable", "detailInfo": UNAVAILABLE_DETAIL}


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


async def concurrent_posts(url: str, bodies: list[dict[str, Any]]) -> list[tuple[int, Any, float]]:
    """Post all at once; (status, body, seconds) of each."""

    async def one(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, Any, float]:
        started = time.monotonic()
        r = await http.post(f"{url}/pick-pack/demo/events", json=body, headers=headers())
        return r.status_code, r.json(), time.monotonic() - started

    async with httpx.AsyncClient(timeout=30) as http:
        return list(await asyncio.gather(*(one(http, b) for b in bodies)))


def test_database_outage_answers_503_fast_recovers_within_5s_and_loses_no_acknowledged_event(
    tmp_path: Path,
) -> None:
    pg = OwnPostgres()
    server, thread, runtime, url = start_service(pg.url, tmp_path)
    feed = f"{url}/pick-pack/demo/events"
    try:
        before = make_events(300, prefix="before-")
        assert scan(before, [url], clients=8).ok == {b["eventId"] for b in before}

        pg.crash()
        assert not pg.answers()
        down = make_events(60, prefix="down-")
        with httpx.Client(timeout=30) as http:
            posts = [
                timed(lambda b=b: http.post(feed, json=b, headers=headers())) for b in down[:3]
            ]
            gets = [timed(lambda: http.get(feed, headers=headers())) for _ in range(2)]
            ready = timed(lambda: http.get(f"{url}/ready"))
        burst = asyncio.run(concurrent_posts(url, down[3:23]))
        for response, _ in posts + gets:
            assert response.status_code == 503, response.text
            assert response.json() == UNAVAILABLE
            assert response.headers["Retry-After"] == "1"
        assert all(status == 503 and body == UNAVAILABLE for status, body, _ in burst)
        assert ready[0].status_code == 503
        slowest_post = max(s for _, s in posts)
        slowest_get = max(s for _, s in gets)
        slowest_burst = max(s for _, _, s in burst)
        assert max(slowest_post, slowest_get, slowest_burst) < FAST_503

        # A scanner keeps retrying its event while the database comes back.
        attempts: list[tuple[float, int]] = []

        def scanner() -> None:
            with httpx.Client(timeout=30) as http:
                while True:
                    try:
                        r = http.post(feed, json=down[0], headers=headers())
                        attempts.append((time.monotonic(), r.status_code))
                        if r.status_code == 200:
                            return
                        assert r.status_code == 503, r.text
                    except httpx.TransportError:
                        attempts.append((time.monotonic(), 0))
                    time.sleep(0.05)

        retrying = threading.Thread(target=scanner, daemon=True)
        retrying.start()
        time.sleep(1.0)  # an outage of a few seconds, with the scanner hammering it
        restarting = threading.Thread(target=pg.start)
        restarting.start()
        while not pg.answers():
            time.sleep(0.01)
        back_at = time.monotonic()
        retrying.join(timeout=30)
        restarting.join(timeout=30)
        assert attempts and attempts[-1][1] == 200, "the scanner never got its 200"
        first_200 = attempts[-1][0] - back_at
        assert first_200 < RECOVERY, f"first 200 only {first_200:.1f}s after the database"

        # Every event refused during the outage is taken when its scanner retries.
        after = scan(down, [url], clients=8)
        more = make_events(200, prefix="after-")
        scan(more, [url], clients=8)
        caught_up = wait_caught_up(pg.url, timeout=15)
        with httpx.Client(timeout=30) as http:
            listed = http.get(feed, headers=headers()).json()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()

    try:
        sent = before + down + more
        stored = stored_packing_events(pg.url)
        per_id = Counter(e.event_id for e in stored)
        totals = view_totals(pg.url, "demo")
        indexed = indexed_event_ids(pg.url)
    finally:
        pg.stop()
    print(
        f"\noutage: 300 events acknowledged, database crashed (pg_ctl -m immediate); during "
        f"the outage {len(posts)} POSTs answered 503 in at most {slowest_post:.2f}s, "
        f"{len(gets)} GETs in {slowest_get:.2f}s, {len(burst)} concurrent POSTs in "
        f"{slowest_burst:.2f}s; a scanner retried {len(attempts)} times; first 200 "
        f"{first_200:.2f}s after the database answered again; {len(after.ok)} refused events "
        f"then taken, 200 more posted; {len(stored)} stored, projections caught up in "
        f"{caught_up:.2f}s"
    )
    assert after.ok == {b["eventId"] for b in down}
    assert set(per_id) == {b["eventId"] for b in sent}, "an acknowledged event was lost"
    assert max(per_id.values()) == 1, "an event was stored twice"
    assert indexed == Counter(b["eventId"] for b in sent)
    assert {e["eventId"] for e in listed} == set(per_id)
    expected = fold.line_totals(fold.accepted(scan_of_body(b) for b in sent))
    assert totals == expected
