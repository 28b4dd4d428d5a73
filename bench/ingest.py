"""Ingest benchmark: POST /events with unique eventIds, against a no-database baseline.

    python bench/ingest.py [--seconds 10] [--connections 32] [--tool wrk|python]
                           [--service-only]

Starts `pickpack serve` on its embedded PostgreSQL (a fresh data dir) and, in the same
run, the baseline app (same FastAPI, same body model, same token check, no database),
both on uvicorn with uvloop and httptools, one worker. Drives each for T seconds over
N keep-alive connections and prints requests/s, p50 and p99 latency, and the ratio.

`--tool wrk` (the default; the script installs Debian's wrk with apt-get when it is
missing and it may) runs wrk pinned to one core with the server processes on the other;
`--tool python` uses N client threads posting sequentially (slower client, but needs
nothing installed): with `--connections 1` it measures sequential posts per second.

`--db-core 0` moves the embedded PostgreSQL (postmaster and every backend) onto core 0,
beside wrk, so the server process has core 1 to itself, as it would with its database
on another host; by default PostgreSQL shares core 1 with the server.

The resident memory of the `pickpack serve` process is sampled once a second while it is
driven, and printed as the median of the first and of the last tenth of the run, and the
peak: `--seconds 300 --service-only` is the five-minute flatness check.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import MANAGE, VIEW, mint_token  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from bench.seed import order_document  # noqa: E402

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


def start_serve(
    port: int, env: dict[str, str], pin: list[str] | None = None, root: Path = ROOT
) -> subprocess.Popen[bytes]:
    """`pickpack serve` in a child process, quiet, optionally pinned to a core; `root`
    is the checkout whose code it runs (another version's, for an A/B comparison)."""
    return subprocess.Popen(
        [
            *(pin or []),
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--port",
            str(port),
            # "info" keeps the JSON request log on, as in production (one line per
            # request, written to /dev/null here): its cost is part of the figure.
            "--log-level",
            "info",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def serving_caught_up(
    url: str, port: int, events: int, data_prefix: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`pickpack serve` on a seeded database, once both projections have applied its
    `events` (their catch-up would compete for the CPU with what is measured): yields the
    base URL and the process, and stops it afterwards."""
    env = {
        **os.environ,
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATABASE_URL": url,
        "PICKPACK_DATA_DIR": scratch_dir(data_prefix),
    }
    service = start_serve(port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, "/ready")
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*), min(notification_id) FROM notification_tracking "
                    "WHERE application_name IN ('line_totals', 'order_status')"
                ).fetchone()
                if row and row[0] == 2 and row[1] >= events:
                    break
                time.sleep(0.5)
        yield base, service
    finally:
        service.terminate()
        service.wait(timeout=30)


def find_wrk() -> bool:
    """wrk on the PATH, installed from Debian's packages first if it is missing."""
    if not shutil.which("wrk") and shutil.which("apt-get") and os.geteuid() == 0:
        print("wrk not found: installing it (apt-get install wrk)")
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True)
            subprocess.run(install, capture_output=True)
    return shutil.which("wrk") is not None


def pin_postgres(data_dir: str, core: int) -> int:
    """Move the embedded PostgreSQL's processes to `core`; returns how many moved.

    Backends forked later inherit the postmaster's affinity.
    """
    pid_file = Path(data_dir) / "pg" / "postmaster.pid"
    postmaster = pid_file.read_text().split()[0]
    children = subprocess.run(
        ["pgrep", "-P", postmaster], capture_output=True, text=True
    ).stdout.split()
    for pid in [postmaster, *children]:
        subprocess.run(["taskset", "-a", "-p", "-c", str(core), pid], capture_output=True)
    return 1 + len(children)


class Sampler:
    """Calls `sample()` every `interval` seconds on a thread while the block runs;
    subclasses append what they read to `samples`."""

    interval = 1.0

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        raise NotImplementedError


class RssSampler(Sampler):
    """The resident memory of one process, sampled once a second from /proc."""

    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def sample(self) -> None:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    self.samples.append(int(line.split()[1]) * 1024)

    def summary(self) -> str:
        n = max(1, len(self.samples) // 10)
        first = statistics.median(self.samples[:n])
        last = statistics.median(self.samples[-n:])
        return (
            f"serve RSS: first tenth {first / 2**20:.0f} MB, last tenth {last / 2**20:.0f} MB "
            f"({(last - first) / first:+.1%}), peak {max(self.samples) / 2**20:.0f} MB, "
            f"{len(self.samples)} samples"
        )


def drive(url: str, seconds: float, connections: int) -> tuple[float, list[float]]:
    headers = {
        "Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}",
        "saas-token": "bench",
    }
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        mine = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            i = 0
            while time.monotonic() < stop:
                body = {
                    "eventId": f"b{n}-{i}-{uuid.uuid4().hex[:6]}",
                    "orderNumber": f"o{i % 100}",
                    "productId": f"p{i % 7}",
                    "unit": "H87",
                    "packedAmount": 1,
                    "timestamp": "2024-05-01T10:00:00.000Z",
                    "site": "main",
                }
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


def drive_wrk(url: str, seconds: float, connections: int, run: str) -> tuple[float, float, float]:
    """wrk on core 0 (the servers are pinned to core 1): req/s, p50 s, p99 s."""
    env = {**os.environ, "TOKEN": mint_token(SECRET, "demo", [VIEW, MANAGE]), "RUN": run}
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds:.0f}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "ingest.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    fields = dict(part.split("=") for part in line.split()[1:])
    assert fields["errors"] == "0" and fields["non2xx"] == "0", out
    rate = int(fields["requests"]) / (int(fields["duration_us"]) / 1e6)
    return rate, int(fields["p50_us"]) / 1e6, int(fields["p99_us"]) / 1e6


ORDERS = 500  # the orders bench/ingest.lua's scans go to: o0 ... o499


def register_orders(base: str, entries: int) -> None:
    """PUT each order the scans go to, with a document of `entries` entries."""
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW, MANAGE])}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for o in range(ORDERS):
            doc = order_document(f"o{o}", entries)
            response = client.put(f"/pick-pack/demo/orders/o{o}", json=doc)
            assert response.status_code in (200, 201, 204), response.text


def report(name: str, rate: float, lat: list[float]) -> None:
    q = statistics.quantiles(lat, n=100)
    print(
        f"{name:<28} {rate:>9,.0f} req/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tool", choices=["wrk", "python"], default="wrk")
    parser.add_argument(
        "--baseline-app",
        default="bench.baseline_app:app",
        help="the no-database app to compare with (bench.starlette_baseline_app:app: "
        "the same checks without FastAPI)",
    )
    parser.add_argument(
        "--db-core", type=int, help="pin the embedded PostgreSQL to this core (wrk's)"
    )
    parser.add_argument(
        "--service-only", action="store_true", help="skip the baseline (e.g. a long RSS run)"
    )
    parser.add_argument(
        "--documents",
        type=int,
        default=0,
        help="first register the benchmark's 500 orders with documents of this many "
        "entries (PUT, as an order import would): the views then fold into real orders",
    )
    args = parser.parse_args()
    if args.tool == "wrk" and not find_wrk():
        print("wrk is not installed and could not be installed: using --tool python")
        args.tool = "python"
    pin = ["taskset", "-c", "1"] if args.tool == "wrk" else []
    env = {
        **os.environ,
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATA_DIR": scratch_dir("pp-ingest-"),
    }
    env.pop("PICKPACK_DATABASE_URL", None)
    service = start_serve(18231, env, pin)
    baseline = subprocess.Popen(
        [
            *pin,
            sys.executable,
            "-m",
            "uvicorn",
            args.baseline_app,
            "--port",
            "18232",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_ready("http://127.0.0.1:18231", "/ready")
        wait_ready("http://127.0.0.1:18232", "/pick-pack/demo/events")
        if args.db_core is not None:
            moved = pin_postgres(env["PICKPACK_DATA_DIR"], args.db_core)
            print(f"embedded PostgreSQL: {moved} processes pinned to core {args.db_core}")
        if args.documents:
            register_orders("http://127.0.0.1:18231", args.documents)
            print(f"registered {ORDERS} orders with {args.documents}-entry documents")
        print(f"{args.tool}, {args.connections} connection(s), {args.seconds:.0f} s each")
        if args.tool == "wrk":
            run = uuid.uuid4().hex[:8]
            rows = []
            if not args.service_only:
                b_rate, b50, b99 = drive_wrk(
                    "http://127.0.0.1:18232", args.seconds, args.connections, run
                )
                rows.append(("baseline (no database)", b_rate, b50, b99))
            with RssSampler(service.pid) as rss:
                s_rate, s50, s99 = drive_wrk(
                    "http://127.0.0.1:18231", args.seconds, args.connections, run
                )
            rows.append(("pickpack serve (embedded)", s_rate, s50, s99))
            for name, rate, p50, p99 in rows:
                print(
                    f"{name:<28} {rate:>9,.0f} req/s   p50 {p50 * 1000:6.2f} ms   "
                    f"p99 {p99 * 1000:6.2f} ms"
                )
        else:
            if not args.service_only:
                b_rate, b_lat = drive("http://127.0.0.1:18232", args.seconds, args.connections)
                report("baseline (no database)", b_rate, b_lat)
            with RssSampler(service.pid) as rss:
                s_rate, s_lat = drive("http://127.0.0.1:18231", args.seconds, args.connections)
            report("pickpack serve (embedded)", s_rate, s_lat)
        if not args.service_only:
            print(f"ratio service/baseline: {s_rate / b_rate:.2f}")
        print(rss.summary())
    finally:
        for p in (service, baseline):
            p.terminate()
            p.wait(timeout=30)


if __name__ == "__main__":
    main()
