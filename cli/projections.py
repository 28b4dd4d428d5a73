"""`pickpack projections rebuild [NAME | --all]` and `pickpack projections status`."""

from __future__ import annotations

import argparse
import re
import signal
import threading
import time
from typing import Any

import psycopg

from bootstrap.opened import opened
from cli.errors import CommandError, Exit, UsageError
from projections.baseline import BaselineMissing
from projections.read import seconds_behind
from projections.rebuild import RebuildBusy, RebuildOutrun, rebuild
from projections.rebuild_tenant import rebuild_tenant
from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner

# The API's tenant path segment (DESIGN: 3 to 16 characters, ^[a-z][a-z0-9]+$).
TENANT = re.compile(r"[a-z][a-z0-9]{2,15}")


def _rebuild(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    names = list(PROJECTIONS) if args.all else [args.name]
    unknown = [n for n in names if n not in PROJECTIONS]
    if not names or unknown or (args.name and args.all):
        raise UsageError(f"name one projection ({', '.join(PROJECTIONS)}) or give --all")
    if args.tenant is not None and not TENANT.fullmatch(args.tenant):
        raise UsageError(
            f"--tenant {args.tenant!r}: a tenant is 3 to 16 lowercase letters and digits, "
            "starting with a letter"
        )
    with opened() as parts:
        database = parts.database
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9,.0f} events/s"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as bar:
            label = "+".join(names)
            task = bar.add_task(label, total=None, rate=0.0)
            first: list[tuple[float, int]] = []

            def update(position: int, head: int) -> None:
                now = time.perf_counter()
                if not first:
                    first.append((now, position))
                t0, p0 = first[0]
                rate = (position - p0) / (now - t0) if now > t0 else 0.0
                bar.update(task, completed=position, total=head, rate=rate)

            # One pass over the store feeds every projection being rebuilt.
            try:
                if args.tenant:
                    report = rebuild_tenant(
                        database.url,
                        [PROJECTIONS[n] for n in names],
                        args.tenant,
                        chunk=args.chunk,
                        progress=update,
                    )
                else:
                    report = rebuild(
                        database.url,
                        [PROJECTIONS[n] for n in names],
                        chunk=args.chunk,
                        flush_every=args.flush_every,
                        progress=update,
                    )
            except (RebuildBusy, BaselineMissing, RebuildOutrun) as refused:
                # Another rebuild holds this projection, or facts are archived that no
                # baseline holds (projections/baseline.py), or an archive ran meanwhile:
                # the command refuses, as an item refused (exit 1), and swaps nothing in.
                raise CommandError(str(refused), Exit.ITEMS_REFUSED) from None
            if args.tenant:
                label = f"{label} of tenant {args.tenant}"
            bar.console.print(
                f"{label}: {report.events:,} events in {report.seconds:.1f}s "
                f"({report.rate:,.0f} events/s)"
                + (f", resumed from {report.resumed_from:,}" if report.resumed_from else "")
                + (
                    f", from the baseline at position {report.baseline:,}"
                    if report.baseline
                    else ""
                )
            )
    return 0


def status_rows(url: str) -> list[dict[str, Any]]:
    """Each projection's position against the store's head: lag in events and seconds."""
    rows = []
    with psycopg.connect(url, autocommit=True) as conn:
        head = conn.execute(
            "SELECT coalesce(max(notification_id), 0) FROM stored_events"
        ).fetchone()[0]  # type: ignore[index]
        for name in PROJECTIONS:
            r = conn.execute(
                "SELECT notification_id FROM notification_tracking WHERE application_name = %s",
                (name,),
            ).fetchone()
            position = int(r[0]) if r and r[0] is not None else 0
            # Lag in seconds: how long ago the oldest event it has not applied was recorded.
            lag_seconds = (seconds_behind(conn, position) or 0.0) if position < head else 0.0
            rebuilding = conn.execute(
                "SELECT position, head FROM projection_rebuilds WHERE projection = %s", (name,)
            ).fetchone()
            # A rebuild going by slices of orders (projections/rebuild_slices.py).
            sliced = conn.execute(
                "SELECT next, slices, head FROM projection_rebuild_slices WHERE projection = %s",
                (name,),
            ).fetchone()
            rows.append(
                {
                    "projection": name,
                    "position": position,
                    "head": head,
                    "lag_events": head - position,
                    "lag_seconds": round(lag_seconds, 3),
                    "rebuild": _rebuild_row(rebuilding, sliced),
                }
            )
    return rows


def _rebuild_row(rebuilding: Any, sliced: Any) -> dict[str, int] | None:
    """A rebuild's progress: its position and head, or (by slices) the next slice, the
    slices (0 before the first has measured them) and the head."""
    if rebuilding is not None:
        return {"position": rebuilding[0], "head": rebuilding[1]}
    if sliced is not None:
        return {"slice": sliced[0], "slices": sliced[1], "head": sliced[2]}
    return None


def _status(_: argparse.Namespace) -> int:
    with opened() as parts:
        rows = status_rows(parts.database.url)
    print(
        f"{'projection':<14} {'position':>10} {'head':>10} {'lag events':>11} {'lag s':>8}  rebuild"
    )
    for r in rows:
        rb, at = "-", r["rebuild"]
        if at is not None and "slice" in at:
            done, of = max(0, at["slice"]), at["slices"]
            rb = f"by slices of orders, {done} of {of} done" if of else "measuring slices"
        elif at is not None:
            rb = f"at {at['position']:,}"
        print(
            f"{r['projection']:<14} {r['position']:>10,} {r['head']:>10,} "
            f"{r['lag_events']:>11,} {r['lag_seconds']:>8.3f}  {rb}"
        )
    return 0


def add_commands(sub: Any) -> None:
    proj = sub.add_parser("projections", help="rebuild projections or show their status")
    psub = proj.add_subparsers(dest="projections_command", required=True)
    rb = psub.add_parser("rebuild", help="replay the store into fresh tables and swap them in")
    rb.add_argument("name", nargs="?", help=f"one of: {', '.join(PROJECTIONS)}")
    rb.add_argument("--all", action="store_true", help="rebuild every projection")
    rb.add_argument(
        "--tenant",
        help="rebuild this tenant's rows only, in place; every other tenant's rows stay",
    )
    rb.add_argument("--chunk", type=int, default=10_000, help="events read per query")
    rb.add_argument(
        "--flush-every",
        type=int,
        default=2_000_000,
        help="write progress at least every N events (and every 30 s)",
    )
    rb.set_defaults(func=_rebuild)
    st = psub.add_parser("status", help="position, head and lag of each projection")
    st.set_defaults(func=_status)
    run = psub.add_parser("run", help="run the projection workers only (no API)")
    run.add_argument("--batch-size", type=int, default=1000, help="events per transaction")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    """Run only the projection workers (no API) until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with opened() as parts:
        runners = [
            ProjectionRunner(
                parts.database.url, list(PROJECTIONS.values()), batch_size=args.batch_size
            ).start()
        ]
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        for r in runners:
            r.stop()
    return 0
