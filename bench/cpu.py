"""Where the CPU goes per ingested event: `serve`'s threads and PostgreSQL.

    python bench/cpu.py [--seconds 10] [--connections 32]

Starts `pickpack serve` on its embedded PostgreSQL pinned to core 1 (as bench/ingest.py
does), drives POST /events with wrk from core 0, and reads the CPU time (user + system,
from /proc) that each thread of `serve` and all PostgreSQL processes used during the
run. Prints microseconds of CPU per request for each: the event loop (the process's main
thread), the group-commit writer, the projection runner, and the service's PostgreSQL,
by backend (each connection names its role: api, writer, projections, listen) and in
all (with the postmaster, its background processes and reaped backends); and the mean
number of events per group-commit transaction (from /metrics), and how far the views
trailed the store's head while it ran (sampled every 20 ms, in events and in time at the
run's rate).
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import uuid
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    SECRET,
    Sampler,
    drive_wrk,
    find_wrk,
    start_serve,
    wait_ready,
)
from bench.scratch import scratch_dir  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stat_path: str, children: bool = False) -> float:
    """utime + stime (and the reaped children's, for a process) in seconds."""
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def threads(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (threads of one name summed)."""
    out: dict[str, float] = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = "event loop" if task.endswith(f"/{pid}") else Path(task, "comm").read_text()
            out[name.strip()] = out.get(name.strip(), 0.0) + cpu_seconds(f"{task}/stat")
        except OSError:
            continue  # the thread ended
    return out


def postgres(data_dir: str) -> dict[str, float]:
    """CPU seconds of this service's PostgreSQL by process: the postmaster (with the
    backends it has reaped) under "postmaster", and each process it runs now by pid."""
    postmaster = Path(data_dir, "pg", "postmaster.pid").read_text().split()[0]
    out = {"postmaster": cpu_seconds(f"/proc/{postmaster}/stat", children=True)}
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            if Path(proc, "stat").read_text().rsplit(")", 1)[1].split()[1] == postmaster:
                out[proc.rsplit("/", 1)[1]] = cpu_seconds(f"{proc}/stat")
        except OSError:
            continue
    return out


def connect(data_dir: str) -> psycopg.Connection:
    """A connection to the service's embedded PostgreSQL, over its socket."""
    lines = Path(data_dir, "pg", "postmaster.pid").read_text().splitlines()
    return psycopg.connect(
        host=lines[4], port=lines[3], dbname="postgres", user="postgres", autocommit=True
    )


class ViewLag(Sampler):
    """Samples, every 20 ms, how many events the slower projection is behind the head."""

    interval = 0.02

    def __init__(self, data_dir: str) -> None:
        super().__init__()
        self.data_dir = data_dir
        self._conn: psycopg.Connection | None = None

    def sample(self) -> None:
        if self._conn is None:
            self._conn = connect(self.data_dir)
        row = self._conn.execute(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM stored_events) - "
            "(SELECT coalesce(min(notification_id), 0) FROM notification_tracking "
            "WHERE application_name IN ('line_totals', 'order_status'))"
        ).fetchone()
        if row is not None:
            self.samples.append(int(row[0]))

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self._conn is not None:
            self._conn.close()


def roles(data_dir: str) -> dict[str, str]:
    """Backend pid -> its connection's application_name (pickpack-api, -writer, ...)."""
    with connect(data_dir) as conn:
        rows = conn.execute("SELECT pid, application_name FROM pg_stat_activity").fetchall()
    return {str(pid): name for pid, name in rows if name}


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not find_wrk():
        sys.exit("wrk is needed (apt-get install wrk)")
    env = {
        **os.environ,
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_DATA_DIR": scratch_dir("pp-cpu-"),
    }
    env.pop("PICKPACK_DATABASE_URL", None)
    service = start_serve(18231, env, ["taskset", "-c", "1"])
    try:
        url = "http://127.0.0.1:18231"
        wait_ready(url, "/ready")
        data_dir = env["PICKPACK_DATA_DIR"]
        before, pg_before = threads(service.pid), postgres(data_dir)
        with ViewLag(data_dir) as lag:
            rate, p50, p99 = drive_wrk(url, args.seconds, args.connections, uuid.uuid4().hex[:8])
        after, pg_after = threads(service.pid), postgres(data_dir)
        scrape = httpx.get(url + "/metrics").text
        names = roles(data_dir)
    finally:
        service.terminate()
        service.wait(timeout=30)
    requests = rate * args.seconds
    print(f"{rate:,.0f} req/s, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    rows = [(name, after[name] - before.get(name, 0.0)) for name in after]
    by_role: dict[str, float] = {}
    for pid, seconds in pg_after.items():
        role = names.get(pid, "other processes")
        role = "postgresql, " + (
            role.removeprefix("pickpack-") + " backend" if pid in names else role
        )
        by_role[role] = by_role.get(role, 0.0) + seconds - pg_before.get(pid, 0.0)
    rows.extend(by_role.items())
    rows.append(("postgresql, all", sum(pg_after.values()) - sum(pg_before.values())))
    for name, seconds in sorted(rows, key=lambda row: -row[1]):
        if seconds > 0.01:
            print(f"  {name:<28} {seconds / requests * 1e6:7.1f} us CPU per request")
    if len(lag.samples) > 10:
        q = statistics.quantiles(lag.samples, n=100)
        print(
            f"  views behind the head (sampled every 20 ms): p50 {q[49]:.0f} events "
            f"({q[49] / rate * 1000:.0f} ms at this rate), p99 {q[98]:.0f} "
            f"({q[98] / rate * 1000:.0f} ms), max {max(lag.samples)} "
            f"({max(lag.samples) / rate * 1000:.0f} ms)"
        )
    events = metric(scrape, 'pickpack_events_appended_total{kind="packing"}')
    transactions = metric(scrape, "pickpack_append_transactions_total")
    if transactions:
        print(f"  {events / transactions:.1f} events per group-commit transaction")


if __name__ == "__main__":
    main()
