"""`pickpack events export --tenant T [--after P] [--follow]`: the change feed as JSON lines.

Reads the database directly through the feed's own query (ledger.services.changes.read),
so each line is exactly an item of `GET /changes`, in position order: a pipeline that
remembers the last position it stored resumes with `--after` and misses nothing.
`--follow` keeps waiting for new facts: it listens for the store's NOTIFY (sent with
every append) and also looks every second, so a missed notification only delays a line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

PAGE = 1000
FOLLOW_POLL_SECONDS = 1.0


def _export(args: argparse.Namespace) -> int:
    import psycopg

    from bootstrap.opened import opened
    from ledger.adapters.prepared import NOTIFY_CHANNEL
    from ledger.services.changes import read

    out = sys.stdout.buffer
    after = args.after
    listen: psycopg.Connection[Any] | None = None
    with opened() as parts:
        try:
            if args.follow:
                listen = psycopg.connect(parts.database.url, autocommit=True)
                listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
            while True:
                page = read(parts.store, args.tenant, after, PAGE)
                for item in page["items"]:
                    out.write(orjson.dumps(item) + b"\n")
                out.flush()
                after = page["next"]
                if page["items"]:
                    continue
                if listen is None:
                    return 0
                for _ in listen.notifies(timeout=FOLLOW_POLL_SECONDS, stop_after=1):
                    pass
        except (KeyboardInterrupt, BrokenPipeError):
            return 0  # the reader went away (`| head`) or the user stopped following
        finally:
            if listen is not None:
                listen.close()


def add_commands(sub: Any) -> None:
    """Add `events export` to the `pickpack` parser's subcommands."""
    cmd = sub.add_parser("events", help="read the ledger's facts")
    events_sub = cmd.add_subparsers(dest="events_command", required=True)
    exp = events_sub.add_parser(
        "export", help="every fact of a tenant in commit order, as JSON lines (the change feed)"
    )
    exp.add_argument("--tenant", required=True, help="the tenant whose facts to export")
    exp.add_argument(
        "--after", type=int, default=0, help="only facts after this position (default 0)"
    )
    exp.add_argument("--follow", action="store_true", help="keep waiting for new facts")
    exp.set_defaults(func=_export)
