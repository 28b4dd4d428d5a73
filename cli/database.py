"""`pickpack database move --to URL`: the whole store to another PostgreSQL.

The way off the embedded PostgreSQL onto a server, whatever the two major versions
(ledger/adapters/move.py says why pg_dump is not the way): the configured database (the
embedded one when PICKPACK_DATABASE_URL is unset) is copied into an empty database at
URL, and both are compared table by table. docs/how-to/move-to-a-server.md is the
procedure around it.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.errors import CommandError, Exit
from ledger.config import ConfigError, Settings, check_database_url, mask_password


def _move(args: argparse.Namespace) -> int:
    from bootstrap.opened import opened
    from ledger.adapters.move import MoveError, move

    try:
        target = check_database_url(args.to)
    except ValueError as exc:
        raise ConfigError(f"--to: {exc}") from None
    settings = Settings.from_env()
    if settings.database_url and settings.database_url == target:
        raise CommandError("--to names the database in use: give another database's URL")
    source = (
        mask_password(settings.database_url)
        if settings.database_url
        else f"the embedded PostgreSQL in {settings.data_dir / 'pg'}"
    )
    # Opening migrates the source to this release's schema, as the target will be.
    with opened(settings) as parts:
        print(f"moving {source} to {mask_password(target)}")
        try:
            checks = move(
                parts.database.url,
                target,
                lambda table, size: print(f"  copied {table} ({size} bytes)"),
            )
        except MoveError as exc:
            raise CommandError(f"{exc}.", Exit.ITEMS_REFUSED) from None
    for check in checks:
        print(f"  {check.table}: {check.rows} rows, the same on both sides")
    print(
        f"moved and checked {len(checks)} tables. Next: set PICKPACK_DATABASE_URL to the new "
        "database and start `pickpack serve`; keep PICKPACK_DATA_DIR (its jwt-secret signs "
        "the dev tokens) or set PICKPACK_JWT_SECRET to that file's content."
    )
    return 0


def add_commands(sub: Any) -> None:
    database = sub.add_parser("database", help="move the whole store to another PostgreSQL")
    commands = database.add_subparsers(dest="database_command", required=True)
    moving = commands.add_parser(
        "move",
        help="copy the configured database (by default the embedded one) into an empty "
        "database at --to, whatever its PostgreSQL version, and check both agree",
    )
    moving.add_argument("--to", required=True, metavar="URL", help="postgresql://... (empty)")
    moving.set_defaults(func=_move)
