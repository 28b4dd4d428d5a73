"""Ingest benchmark: POST /events with unique eventIds, against a no-database baseline.

    python bench/ingest.py [--seconds 10] [--connections 1]

Starts `pickpack serve` on its embedded PostgreSQL (a fresh data dir) and, in the same
run, the baseline app (same FastAPI, same body model, same token check, no database),
both on uvicorn with uvloop and httptools, one worker. Drives each with N client
threads posting sequentially over keep-alive connections for T seconds and prints
requests/s, p50 and p99 latency, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import MANAGE, VIEW, mint_token  # noqa: E402

SECRET = "bench-secret-" + uuid.uuid4().hex


def wait_ready(url: str, path: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=1).status_code in (200, 405):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def drive(url: str, seconds: float, connections: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}",
               "saas-token": "bench"}
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        mine = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            i = 0
            while time.monotonic() < stop:
                body = {"eventId": f"b{n}-{i}-{uuid.uuid4().hex[:6]}", "orderNumber": f"o{i % 100}",
                        "productId": f"p{i % 7}", "unit": "H87", "packedAmount": 1,
                        "timestamp": "2024-05-01T10:00:00.000Z", "site": "main"}
                t0 = time.perf_counter()
                r = c.post("/pick-pack/demo/events", json=body)
                mine.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                i += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.monotonic() - started), latencies


def report(name: str, rate: float, lat: list[float]) -> None:
    q = statistics.quantiles(lat, n=100)
    print(f"{name:<28} {rate:>9,.0f} req/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=1)
    args = parser.parse_args()
    env = {**os.environ, "PICKPACK_JWT_SECRET": SECRET,
           "PICKPACK_DATA_DIR": tempfile.mkdtemp(prefix="pp-ingest-")}
    env.pop("PICKPACK_DATABASE_URL", None)
    service = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", "18231",
                                "--log-level", "warning"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    baseline = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.baseline_app:app",
                                 "--port", "18232", "--loop", "uvloop", "--http", "httptools",
                                 "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        wait_ready("http://127.0.0.1:18231", "/ready")
        wait_ready("http://127.0.0.1:18232", "/pick-pack/demo/events")
        print(f"{args.connections} connection(s), {args.seconds:.0f} s each")
        b_rate, b_lat = drive("http://127.0.0.1:18232", args.seconds, args.connections)
        s_rate, s_lat = drive("http://127.0.0.1:18231", args.seconds, args.connections)
        report("baseline (no database)", b_rate, b_lat)
        report("pickpack serve (embedded)", s_rate, s_lat)
        print(f"ratio service/baseline: {s_rate / b_rate:.2f}")
    finally:
        for p in (service, baseline):
            p.terminate()
            p.wait(timeout=30)


if __name__ == "__main__":
    main()
