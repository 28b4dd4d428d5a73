"""`pickpack clients add|list|revoke`: the OAuth clients that may get tokens.

A client belongs to one tenant and holds some of this service's scopes; it gets tokens
from POST /oauth/token with its id and secret (client-credentials grant). The secret is
printed once, by `add`, and stored only as a slow hash (ledger/services/tokens.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from cli.errors import CommandError, Exit, UsageError
from ledger.adapters import client_store
from ledger.domain.clients import KNOWN_SCOPES


@contextmanager
def _connection() -> Iterator[Any]:
    """An autocommit connection to the configured database, migrated."""
    from bootstrap.opened import opened

    with opened() as parts, psycopg.connect(parts.database.url, autocommit=True) as conn:
        yield conn


def add(conn: Any, tenant: str, scopes: list[str], name: str | None = None) -> tuple[str, str]:
    """Register a client; (client_id, secret). What `clients add` runs."""
    from ledger.services.tokens import register_client

    new = register_client(conn, tenant, scopes, name)
    return new.client_id, new.secret


def _add(args: argparse.Namespace) -> int:
    try:
        with _connection() as conn:
            client_id, secret = add(conn, args.tenant, args.scope, args.name)
    except ValueError as exc:
        raise UsageError(f"{exc}: correct the command's arguments") from None
    print(f"client_id={client_id}")
    print(f"client_secret={secret}")
    print(
        "The secret is shown this once and stored only as a hash: keep it now.",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    with _connection() as conn:
        rows = client_store.list_clients(conn, args.tenant)
    print("client_id\ttenant\tscopes\tname\tcreated\trevoked")
    for r in rows:
        revoked = r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-"
        print(
            f"{r.client_id}\t{r.tenant}\t{' '.join(r.scopes)}\t{r.name or '-'}\t"
            f"{r.created_at.isoformat(timespec='seconds')}\t{revoked}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with _connection() as conn:
        found = client_store.revoke(conn, args.client_id)
    if not found:
        raise CommandError(
            f"no client {args.client_id}: `pickpack clients list` shows the registered ones",
            Exit.ITEMS_REFUSED,
        )
    print(f"revoked {args.client_id}")
    return 0


def add_commands(sub: Any) -> None:
    """Add `clients add|list|revoke` to the `pickpack` parser's subcommands."""
    cmd = sub.add_parser("clients", help="OAuth clients that get tokens from /oauth/token")
    clients_sub = cmd.add_subparsers(dest="clients_command", required=True)
    add_cmd = clients_sub.add_parser("add", help="register a client; prints its id and secret")
    add_cmd.add_argument("--tenant", required=True, help="the one tenant the client acts on")
    add_cmd.add_argument(
        "--scope",
        action="extend",
        nargs="+",
        required=True,
        choices=KNOWN_SCOPES,
        help="scopes the client may be granted",
    )
    add_cmd.add_argument("--name", help="a label for the client (a scanner, a site)")
    add_cmd.set_defaults(func=_add)
    list_cmd = clients_sub.add_parser("list", help="registered clients (never their secrets)")
    list_cmd.add_argument("--tenant", help="only this tenant's clients")
    list_cmd.set_defaults(func=_list)
    revoke_cmd = clients_sub.add_parser(
        "revoke", help="revoke a client: no new tokens, and its tokens stop working"
    )
    revoke_cmd.add_argument("client_id")
    revoke_cmd.set_defaults(func=_revoke)
