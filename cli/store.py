"""`pickpack store partitions [--size N]`: the event store's partitions, made ahead of need.

The service makes the next partitions itself (at start and every few minutes); this
command does the same on demand, for a cron job or before a bulk import, and lists them
(docs/how-to/retention.md). `--size N` makes the partitions created from now on hold N
positions; those not used yet are made again at that size.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.errors import CommandError


def _partitions(args: argparse.Namespace) -> int:
    from bootstrap.opened import opened
    from ledger.adapters import connection, partitions

    with opened() as parts:
        url = parts.database.url
        if args.size is not None:
            try:
                made = partitions.resize(url, args.size, args.ahead)
            except ValueError as exc:
                raise CommandError(f"--size: {exc}") from None
        else:
            made = partitions.ensure_ahead(url, args.ahead)
        with connection.connect(url) as conn:
            if not partitions.is_partitioned(conn):
                raise CommandError("the store is not partitioned: run `pickpack migrate` first")
            head = partitions.drawn(conn)
            listed = partitions.partitions(conn)
            size = partitions.size(conn)
    print(f"partition size {size:,} positions; last position drawn {head:,}")
    for part in listed:
        lower = "MINVALUE" if part.lower is None else f"{part.lower:,}"
        if part.lower is not None and part.lower > head:
            state = "ahead"
        elif part.upper > head + 1:
            state = "receiving appends"
        else:
            state = "full"
        new = " (made now)" if part.name() in made else ""
        print(f"  {part.name()}: positions {lower} to {part.upper - 1:,}, {state}{new}")
    return 0


def add_commands(sub: Any) -> None:
    store = sub.add_parser("store", help="the event store's partitions")
    commands = store.add_subparsers(dest="store_command", required=True)
    parts = commands.add_parser(
        "partitions", help="make the store's next partitions now and list them"
    )
    parts.add_argument("--size", type=int, help="positions per partition from now on")
    parts.add_argument(
        "--ahead", type=int, default=2, help="partitions kept ready beyond the current one"
    )
    parts.set_defaults(func=_partitions)
