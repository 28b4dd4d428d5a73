"""Projection lag: time from a POST's 200 to the event being visible in the views.

    python bench/lag.py [--rate 500] [--seconds 60]

Starts `pickpack serve` on its embedded PostgreSQL (fresh data dir), posts packing
events at a steady rate, and records when each was acknowledged. An observer polls the
projections' tracked positions every millisecond or so. Afterwards each event's
position is looked up and its lag is the first observation at which every projection
had applied it, minus its acknowledgement time (0 if it was already visible when the
client got its 200). Prints the achieved rate and p50/p99/max lag.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import threading
import time
import uuid
from bisect import bisect_left
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import MANAGE, VIEW, mint_token  # noqa: E402
from bench.ingest import start_serve, wait_ready  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402

SECRET = "bench-secret-" + uuid.uuid4().hex
PORT = 18233


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    data_dir = scratch_dir("pp-lag-")
    env = {**os.environ, "PICKPACK_JWT_SECRET": SECRET, "PICKPACK_DATA_DIR": data_dir}
    env.pop("PICKPACK_DATABASE_URL", None)
    service = start_serve(PORT, env)
    try:
        base = f"http://127.0.0.1:{PORT}"
        wait_ready(base, "/ready")
        db_url = _database_url(data_dir)
        acks: list[tuple[float, str]] = []
        observations: list[tuple[float, int]] = []
        stop = threading.Event()

        def observe() -> None:
            with psycopg.connect(db_url, autocommit=True) as conn:
                while not stop.is_set():
                    row = conn.execute(
                        "SELECT min(notification_id) FROM notification_tracking "
                        "WHERE application_name IN ('line_totals', 'order_status')"
                    ).fetchone()
                    observations.append((time.perf_counter(), int(row[0] or 0)))  # type: ignore[index]
                    time.sleep(0.001)

        headers = {
            "Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}",
            "saas-token": "bench",
        }
        per_client = args.rate / args.clients
        lock = threading.Lock()

        def client(n: int) -> None:
            # http.client, not httpx: the load generator shares the machine's two cores
            # with the service, so it must be as light as it can be.
            interval = 1.0 / per_client
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            hdrs = {**headers, "Content-Type": "application/json"}
            start = time.perf_counter() + n * interval / args.clients
            i = 0
            while (due := start + i * interval) < start + args.seconds:
                time.sleep(max(0.0, due - time.perf_counter()))
                eid = f"l{n}-{i}"
                body = (
                    f'{{"eventId":"{eid}","orderNumber":"o{i % 200}","productId":"p{n}",'
                    '"unit":"H87","packedAmount":1,"site":"main",'
                    '"timestamp":"2024-05-01T10:00:00.000Z"}'
                )
                conn.request("POST", "/pick-pack/demo/events", body=body, headers=hdrs)
                response = conn.getresponse()
                response.read()
                acked = time.perf_counter()
                assert response.status == 200, response.status
                with lock:
                    acks.append((acked, eid))
                i += 1
            conn.close()

        observer = threading.Thread(target=observe)
        observer.start()
        began = time.perf_counter()
        clients = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        elapsed = time.perf_counter() - began
        time.sleep(1.0)
        stop.set()
        observer.join()

        with psycopg.connect(db_url) as conn:
            positions = dict(
                conn.execute(
                    "SELECT event_id, position FROM packing_events WHERE tenant = 'demo'"
                ).fetchall()
            )
        times = [t for t, _ in observations]
        lags = []
        for acked, eid in acks:
            pos = positions[eid]
            # first observation at or after the ack that shows the event applied
            i = bisect_left(times, acked)
            before = observations[i - 1][1] if i > 0 else 0
            if before >= pos:
                lags.append(0.0)
                continue
            while i < len(observations) and observations[i][1] < pos:
                i += 1
            lags.append(observations[i][0] - acked)
        q = statistics.quantiles(lags, n=100)
        print(
            f"{len(acks):,} events in {elapsed:.1f}s = {len(acks) / elapsed:,.0f} events/s "
            f"({args.clients} clients); observer samples every "
            f"{elapsed / max(1, len(observations)) * 1000:.1f} ms"
        )
        print(
            f"lag from 200 to visible in both views: p50 {q[49] * 1000:.1f} ms, "
            f"p99 {q[98] * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms"
        )
    finally:
        service.terminate()
        service.wait(timeout=30)


def _database_url(data_dir: str) -> str:
    from ledger.adapters.database import start_embedded

    # Attaches to the server `serve` started in this data dir (pgserver shares it).
    return start_embedded(Path(data_dir) / "pg").url


if __name__ == "__main__":
    main()
