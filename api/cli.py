"""The `pickpack` command line: serve, migrate, token, projections, orders, fakes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from api.auth import MANAGE, VIEW, local_secret, mint_token
from ledger.config import Settings
from ledger.database import provision
from ledger.migrate import MigrationError, migrate


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    database = provision(settings)
    try:
        applied = migrate(database.url)
        if applied:
            print(f"migrations applied: {', '.join(applied)}", flush=True)
        # Workers (and a single in-process app) find the database through the
        # environment, so they attach to the server this process provisioned.
        os.environ["PICKPACK_DATABASE_URL"] = database.url
        if not (settings.jwt_secret or settings.jwks_url):
            secret = local_secret(settings.data_dir)
            assert secret is not None
            token = mint_token(secret, "demo", [VIEW, MANAGE])
            print(
                "\nNo PICKPACK_JWT_SECRET or PICKPACK_JWKS_URL: using the dev secret in "
                f"{settings.data_dir / 'jwt-secret'}.\nDev token (tenant demo, both scopes):\n\n"
                f"  export TOKEN={token}\n",
                flush=True,
            )
        print(f"serving on http://{args.host}:{args.port}", flush=True)
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the
        # handler that was there before it. Make that handler an orderly exit, so the
        # `finally` below stops the embedded PostgreSQL instead of leaving it running.
        signal.signal(signal.SIGTERM, _exit_quietly)
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            log_level=args.log_level,
            timeout_graceful_shutdown=10,
        )
    finally:
        database.stop()
    return 0


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _migrate(_: argparse.Namespace) -> int:
    settings = Settings.from_env()
    database = provision(settings)
    try:
        applied = migrate(database.url)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        database.stop()
    print(f"applied: {', '.join(applied)}" if applied else "nothing to apply")
    return 0


def _token(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    secret = settings.jwt_secret or local_secret(settings.data_dir)
    assert secret is not None
    scopes = args.scope or [VIEW, MANAGE]
    print(mint_token(secret, args.tenant, scopes, subject=args.sub, ttl_seconds=args.ttl))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pickpack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and its projection workers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    mig = sub.add_parser("migrate", help="apply pending schema migrations")
    mig.set_defaults(func=_migrate)

    tok = sub.add_parser("token", help="mint a dev token with the local secret")
    tok.add_argument("--tenant", required=True)
    tok.add_argument("--scope", action="extend", nargs="+", help="scopes (default: both)")
    tok.add_argument("--sub", default="dev-user", help="the token's subject (user id)")
    tok.add_argument("--ttl", type=int, default=30 * 24 * 3600, help="lifetime in seconds")
    tok.set_defaults(func=_token)

    from projections.cli import add_commands as add_projection_commands

    add_projection_commands(sub)
    from api.orders_cli import add_commands as add_order_commands

    add_order_commands(sub)
    from api.fake_order_service import add_commands as add_fake_commands

    add_fake_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
