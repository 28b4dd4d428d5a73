"""Pack stations waiting for lagging views must not take the scanners' connections.

Order reads wait (up to 2 s) until the views have applied their tenant's newest event. If
they held a pooled connection while waiting, a few dozen pack-station reads during a projection
catch-up would hold the whole pool, and the scanners' appends, finding no connection
within the checkout timeout, would be answered 503.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx

from devtools.harness.service import EXAMPLE_EVENT, Service, auth, start_service


def test_scanners_keep_getting_200s_while_pack_stations_wait_for_lagging_views(
    db_url: str, tmp_path: Path
) -> None:
    # No projection workers: the views never reach the head, so every order read waits
    # its full read-your-writes timeout.
    server, thread, runtime, url = start_service(db_url, tmp_path, run_workers=False)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            first = {**EXAMPLE_EVENT, "eventId": "before", "orderNumber": "o1"}
            assert (
                client.post("/pick-pack/demo/events", json=first, headers=auth()).status_code == 200
            )

            # The readers send together once each has its client: building 32 clients
            # (an SSL context each) is the test's own work and must not overlap the posts.
            ready = threading.Barrier(33)

            def pack_station(_: int) -> int:
                with httpx.Client(base_url=url, timeout=30) as c:
                    headers = auth()
                    ready.wait(30)
                    return c.get("/pick-pack/demo/orders/o1", headers=headers).status_code

            with ThreadPoolExecutor(max_workers=32) as pool:
                reads = [pool.submit(pack_station, i) for i in range(32)]
                ready.wait(30)
                time.sleep(0.3)  # the readers are now waiting for the views
                answers = []
                for i in range(10):
                    body = {**EXAMPLE_EVENT, "eventId": f"during-{i}", "orderNumber": "o1"}
                    t0 = time.monotonic()
                    r = client.post("/pick-pack/demo/events", json=body, headers=auth())
                    answers.append((r.status_code, time.monotonic() - t0))
                    time.sleep(0.1)
                read_statuses = [f.result() for f in reads]
        print(f"32 order reads waiting on lagging views; 10 posts meanwhile: {answers}")
        assert [status for status, _ in answers] == [200] * 10
        assert max(seconds for _, seconds in answers) < 0.5
        assert all(status in (200, 404) for status in read_statuses), read_statuses
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()


def test_a_scan_is_recorded_even_when_every_read_connection_is_taken(service: Service) -> None:
    """The scanners' appends have a pool of their own: a saturated read pool costs them nothing."""
    reads = service.runtime.store.datastore
    with ExitStack() as held:
        for _ in range(reads.pool.max_size):
            held.enter_context(reads.get_connection())
        t0 = time.monotonic()
        response = service.post_event({**EXAMPLE_EVENT, "eventId": "while-saturated"})
        elapsed = time.monotonic() - t0
    print(
        f"read pool: all {reads.pool.max_size} connections held; "
        f"post: {response.status_code} in {elapsed:.3f}s"
    )
    assert response.status_code == 200
    assert elapsed < 0.5
