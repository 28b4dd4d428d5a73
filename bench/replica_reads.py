"""The primary's CPU saved by PICKPACK_DATABASE_REPLICA_URL on a read-heavy mix.

    nice -n 10 python -m bench.replica_reads [--events 50000] [--seconds 20] [--rate 60]
                                              [--clients 8] [--rounds 2]

A primary and a hot standby streaming from it on loopback ports (devtools/harness/
streaming.py: PostgreSQL 15, run as an unprivileged user), a database seeded with
`--events` scans over 500 orders (bench/seed.py), then `pickpack serve` on the primary
twice per round, alternated (primary only, replica, replica, primary only, ...: no drift
bias), each time with the same paced load of `--clients` clients at `--rate` requests a
second in all for `--seconds`:

    30% GET /events (a page of 200 after a random seeded time)
    20% GET .../orders/{id}/history (limit 100)
    20% GET /changes (a page of 500 after a random position: a consumer catching up)
    20% GET .../orders/{id} (an order read: the primary either way)
    10% POST /events (a new scan: the primary either way)

For each run: requests answered per second (the same load: it must match), the
answers that were not 200, p50 and p99, and the CPU seconds used by every process of
the primary and of the standby over the window (utime + stime from /proc, exited
backends included through the postmaster's cutime + cstime), per wall second and, for the
primary, per request answered. Printed at
the end: the medians of each configuration and the ratio of the primary's CPU with the
replica to without, and the load average at the start and the end (a shared machine).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import threading
import time
from pathlib import Path

import httpx

from api.auth import MANAGE, VIEW, mint_token
from bench.ingest import start_serve, wait_ready
from bench.seed import order_document, seeded_database
from devtools.harness import streaming
from devtools.harness.service import EXAMPLE_EVENT, free_port

SECRET = "bench-secret-0123456789-0123456789-0123456789"
TENANT = "bench"
ORDERS = 500
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server: streaming.Server) -> float:
    """utime + stime of the postmaster and every live child, plus what its exited
    children used (cutime + cstime): the server's whole CPU so far."""
    total = 0
    pids = server.pids()
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile: counted in the postmaster's cutime from now on
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if pid == pids[0]:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / TICK


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Mix:
    """Paced clients: request i of the whole run is due at start + i / rate."""

    def __init__(self, base: str, rate: float, clients: int, seconds: float, events: int) -> None:
        self.base, self.rate, self.clients, self.seconds = base, rate, clients, seconds
        self.events = events
        self.token = mint_token(SECRET, TENANT, [VIEW, MANAGE], subject="bench", ttl_seconds=3600)
        self.latencies: list[float] = []
        self.not_ok = 0
        self._next = 0
        self._lock = threading.Lock()

    def run(self) -> None:
        self.start = time.monotonic()
        threads = [threading.Thread(target=self._client, args=(n,)) for n in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _client(self, n: int) -> None:
        rng = random.Random(n)
        headers = {"Authorization": f"Bearer {self.token}", "saas-token": "bench"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as client:
            while True:
                with self._lock:
                    i = self._next
                    self._next += 1
                due = self.start + i / self.rate
                if due - self.start >= self.seconds:
                    return
                time.sleep(max(0.0, due - time.monotonic()))
                began = time.monotonic()
                status = self._request(client, rng, i)
                with self._lock:
                    self.latencies.append(time.monotonic() - began)
                    self.not_ok += status != 200

    def _request(self, client: httpx.Client, rng: random.Random, i: int) -> int:
        order = f"o{rng.randrange(ORDERS)}"
        kind = i % 10
        if kind < 3:
            second = rng.randrange(min(self.events, 86_400))
            at = f"2024-05-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
            path = f"/pick-pack/{TENANT}/events?timestamp={at}&pageSize=200"
            return client.get(path).status_code
        if kind < 5:
            return client.get(f"/pick-pack/{TENANT}/orders/{order}/history?limit=100").status_code
        if kind < 7:
            after = rng.randrange(self.events)
            return client.get(f"/pick-pack/{TENANT}/changes?after={after}&limit=500").status_code
        if kind < 9:
            return client.get(f"/pick-pack/{TENANT}/orders/{order}").status_code
        body = {**EXAMPLE_EVENT, "eventId": f"n{time.time_ns()}-{i}", "orderNumber": order,
                "productId": "p0", "timestamp": "2024-05-02T08:00:00.000Z"}  # fmt: skip
        return client.post(f"/pick-pack/{TENANT}/events", json=body).status_code


def one_run(
    pair: streaming.StreamingPair,
    db: str,
    replica: bool,
    args: argparse.Namespace,
    data: Path,
    register: bool,
) -> dict[str, float]:
    primary_url = pair.primary.url.rsplit("/", 1)[0] + "/" + db
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")},
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATABASE_URL": primary_url,
        "PICKPACK_DATA_DIR": str(data),
    }
    if replica:
        env["PICKPACK_DATABASE_REPLICA_URL"] = pair.standby.url.rsplit("/", 1)[0] + "/" + db
    port = free_port()
    service = start_serve(port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, "/ready")
        if register:
            register_orders(base)
        time.sleep(2)  # the projections' start-up and the pools' first connections settle
        mix = Mix(base, args.rate, args.clients, args.seconds, args.events)
        p0, s0, t0 = cpu_seconds(pair.primary), cpu_seconds(pair.standby), time.monotonic()
        mix.run()
        wall = time.monotonic() - t0
        p1, s1 = cpu_seconds(pair.primary), cpu_seconds(pair.standby)
    finally:
        service.terminate()
        service.wait(timeout=30)
    lat = sorted(mix.latencies)
    return {
        "rate": len(lat) / wall,
        "not_ok": mix.not_ok,
        "p50": lat[len(lat) // 2] * 1000,
        "p99": lat[int(len(lat) * 0.99)] * 1000,
        "primary": (p1 - p0) / wall,
        "standby": (s1 - s0) / wall,
        "primary_ms_per_request": (p1 - p0) * 1000 / len(lat),
    }


def register_orders(base: str) -> None:
    """Every seeded order registered (before the first run only)."""
    token = mint_token(SECRET, TENANT, [VIEW, MANAGE], subject="bench", ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}", "saas-token": "bench"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for n in range(ORDERS):
            resp = client.put(f"/pick-pack/{TENANT}/orders/o{n}", json=order_document(f"o{n}", 5))
            assert resp.status_code == 200, resp.text


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replica_reads", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=60, help="requests per second in all")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration")
    args = parser.parse_args()
    lacking = streaming.missing()
    if lacking:
        raise SystemExit(f"needs {lacking}")
    loads = [load_average()]
    pair = streaming.StreamingPair().start()
    data = pair.root / "data"
    try:
        with seeded_database(pair.primary.url, "replica_bench", args.events, tenant=TENANT,
                             orders=ORDERS):  # fmt: skip
            pair.caught_up(timeout=120)
            results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
            order = [False, True, True, False] * args.rounds
            print(
                f"replica-reads: {args.events:,} seeded scans, {args.rate:g} requests/s from "
                f"{args.clients} clients, {args.seconds:g} s per run; load {loads[0]}"
            )
            for i, replica in enumerate(order[: 2 * args.rounds]):
                r = one_run(pair, "replica_bench", replica, args, data / str(i), register=i == 0)
                results[replica].append(r)
                print(
                    f"  {'replica' if replica else 'primary only':12}: {r['rate']:6.1f} req/s, "
                    f"{r['not_ok']:.0f} not 200, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, "
                    f"CPU primary {r['primary']:.3f} s/s ({r['primary_ms_per_request']:.2f} ms "
                    f"per request), standby {r['standby']:.3f} s/s",
                    flush=True,
                )
            loads.append(load_average())
    finally:
        pair.stop()
        shutil.rmtree(data, ignore_errors=True)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in results.items()}
    without, with_ = med[False], med[True]
    ratio = with_["primary"] / without["primary"]
    per_request = with_["primary_ms_per_request"] / without["primary_ms_per_request"]
    print(
        f"medians ({args.rounds} runs each): primary CPU {without['primary']:.3f} s/s without "
        f"the replica, {with_['primary']:.3f} s/s with it: {ratio:.2f}x; per request "
        f"{without['primary_ms_per_request']:.2f} -> {with_['primary_ms_per_request']:.2f} ms: "
        f"{per_request:.2f}x "
        f"(standby {without['standby']:.3f} -> {with_['standby']:.3f} s/s); p99 "
        f"{without['p99']:.1f} -> {with_['p99']:.1f} ms; req/s {without['rate']:.1f} -> "
        f"{with_['rate']:.1f}; load average {loads[0]} at the start, {loads[-1]} at the end"
    )


if __name__ == "__main__":
    main()
