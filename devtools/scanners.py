"""Scanners for the compose smoke scripts (docker/smoke-replicas.sh, docker/smoke-cluster.sh):
a steady flow of distinct scans posted the way a warehouse scanner posts them, and the
check that every acknowledged scan is stored once.

    python3 -m devtools.scanners run --url http://127.0.0.1:8080 --token JWT \\
        --tenant smoke --prefix run1- --out DIR [--clients 4] [--pause 0.05] [--give-up 120]
    python3 -m devtools.scanners check --out DIR --stored FILE

`run` starts --clients scanners, each posting scans one after another over a keep-alive
connection. A scanner that gets no 200 (an error answer, a reset, a timeout) sends the
same scan again, with the same eventId, after Retry-After (at most 1 s) or 0.2 s, as
scanners do; the ledger counts a scan once per eventId, so a resend is safe. A scan
that is still not acknowledged --give-up seconds after its first send is a failed scan.
Every acknowledged eventId is appended to DIR/acked as it is acknowledged (the smoke
scripts count its lines to see scans flowing). SIGTERM or SIGINT stops the run: each
scanner finishes the scan in hand, then DIR/summary.json and one line are written.
Exit 0 when no scan failed.

`check` compares DIR/acked with FILE, the stored eventIds with their row counts
(`event_id|count` lines, psql -At output): every acknowledged scan stored, none twice.

Standard library only: it runs on a host's python3 without the project's dependencies.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import signal
import statistics
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESEND_PAUSE = 0.2  # after an error without Retry-After
MAX_RETRY_AFTER = 1.0  # scanners do not wait longer than this between resends


@dataclass
class Tally:
    """What the scanners saw, shared between their threads."""

    acked: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, eventId)
    latencies: list[float] = field(default_factory=list)  # seconds, answered 200
    to_ack: list[float] = field(default_factory=list)  # first send to 200, per scan
    requests: int = 0
    resent: int = 0  # acknowledged scans that needed more than one request
    failed_requests: dict[str, int] = field(default_factory=dict)  # "503", "reset", ...
    failed_scans: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failure(self, kind: str) -> None:
        with self.lock:
            self.failed_requests[kind] = self.failed_requests.get(kind, 0) + 1


def scan_body(event_id: str, n: int) -> bytes:
    """A scan of one unit picked, over 50 orders and 5 products."""
    return json.dumps(
        {
            "eventId": event_id,
            "orderNumber": f"smoke-o{n % 50}",
            "productId": f"smoke-p{n % 5}",
            "deliveryCycle": "2023-10-13-11-test",
            "pickedAmount": 1,
            "packedAmount": 0,
            "canceledAmount": 0,
            "supplierId": "s1",
            "unit": "H87",
            "timestamp": "2024-01-02T03:04:05.000Z",
            "site": "main",
            "bookProduct": True,
        }
    ).encode()


class Scanner(threading.Thread):
    def __init__(self, number: int, args: argparse.Namespace, tally: Tally, out: Any) -> None:
        super().__init__(daemon=True)
        self.number = number
        self.args = args
        self.tally = tally
        self.out = out
        url = urllib.parse.urlsplit(args.url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.path = f"/pick-pack/{args.tenant}/events"
        self.headers = {
            "Authorization": f"Bearer {args.token}",
            "saas-token": args.tenant,
            "Content-Type": "application/json",
        }
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int | None, str, float]:
        """(status or None, failure kind, Retry-After) of one request."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.timeout)
        conn = self.conn
        try:
            conn.request("POST", self.path, body=body, headers=self.headers)
            answer = conn.getresponse()
            answer.read()
            if answer.getheader("Connection", "").lower() == "close":
                conn.close()
                self.conn = None
            retry_after = float(answer.getheader("Retry-After") or RESEND_PAUSE)
            return answer.status, str(answer.status), retry_after
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self.conn = None
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return None, kind, RESEND_PAUSE

    def run(self) -> None:
        n = 0
        while not STOP.is_set():
            event_id = f"{self.args.prefix}{self.number}-{n}"
            body = scan_body(event_id, n)
            first = time.monotonic()
            attempts = 0
            while True:
                attempts += 1
                started = time.monotonic()
                status, kind, retry_after = self.post(body)
                now = time.monotonic()
                with self.tally.lock:
                    self.tally.requests += 1
                if status == 200:
                    with self.tally.lock:
                        self.tally.acked.append((now, event_id))
                        self.tally.latencies.append(now - started)
                        self.tally.to_ack.append(now - first)
                        self.tally.resent += attempts > 1
                        self.out.write(event_id + "\n")
                        self.out.flush()
                    break
                self.tally.failure(kind)
                if now - first > self.args.give_up:
                    with self.tally.lock:
                        self.tally.failed_scans.append(event_id)
                    break
                time.sleep(min(retry_after, MAX_RETRY_AFTER))
            n += 1
            time.sleep(self.args.pause)


STOP = threading.Event()


def summarize(tally: Tally, seconds: float) -> dict[str, Any]:
    times = sorted(t for t, _ in tally.acked)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    latencies = sorted(tally.latencies)
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [0.0] * 99
    return {
        "seconds": round(seconds, 1),
        "scans_acked": len(tally.acked),
        "failed_scans": len(tally.failed_scans),
        "requests": tally.requests,
        "failed_requests": dict(sorted(tally.failed_requests.items())),
        "scans_resent": tally.resent,
        "longest_without_ack_s": round(max(gaps, default=0.0), 2),
        # Each time without an acknowledged scan longer than 1 s, in order: one per event.
        "gaps_over_1s": [round(g, 1) for g in gaps if g > 1.0],
        "longest_to_ack_s": round(max(tally.to_ack, default=0.0), 2),
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
    }


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    tally = Tally()
    started = time.monotonic()
    with open(out_dir / "acked", "a") as out:
        scanners = [Scanner(i, args, tally, out) for i in range(args.clients)]
        for scanner in scanners:
            scanner.start()
        while any(s.is_alive() for s in scanners):
            time.sleep(0.1)
    summary = summarize(tally, time.monotonic() - started)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("scanners: " + ", ".join(f"{k} {v}" for k, v in summary.items()), flush=True)
    return 0 if not tally.failed_scans else 1


def check(args: argparse.Namespace) -> int:
    acked = Path(args.out, "acked").read_text().split()
    stored: dict[str, int] = {}
    for line in Path(args.stored).read_text().splitlines():
        if line.strip():
            event_id, _, count = line.partition("|")
            stored[event_id] = int(count)
    lost = [e for e in acked if e not in stored]
    twice = [e for e, n in stored.items() if n > 1]
    extra = len(set(stored) - set(acked))
    print(
        f"check: acked {len(acked)}, of them stored {len(acked) - len(lost)}, lost {len(lost)}, "
        f"stored more than once {len(twice)}, stored but never acked {extra}"
        + (f"; lost e.g. {lost[:3]}" if lost else "")
        + (f"; twice e.g. {twice[:3]}" if twice else ""),
        flush=True,
    )
    return 0 if acked and not lost and not twice and len(set(acked)) == len(acked) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="post scans until SIGTERM")
    r.add_argument("--url", required=True)
    r.add_argument("--token", required=True)
    r.add_argument("--tenant", default="smoke")
    r.add_argument("--prefix", required=True, help="of every eventId of this run")
    r.add_argument("--out", required=True, help="directory for acked and summary.json")
    r.add_argument("--clients", type=int, default=4)
    r.add_argument("--pause", type=float, default=0.05, help="seconds between a scanner's scans")
    r.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    r.add_argument("--give-up", type=float, default=120.0, help="seconds of resending a scan")
    c = sub.add_parser("check", help="every acknowledged scan stored once")
    c.add_argument("--out", required=True)
    c.add_argument("--stored", required=True)
    args = parser.parse_args()
    sys.exit(run(args) if args.command == "run" else check(args))


if __name__ == "__main__":
    main()
