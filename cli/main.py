"""The `pickpack` command line: serve, migrate, token, config, projections, orders, demo, fakes."""

from __future__ import annotations

import argparse
import logging.config
import os
import signal
import sys
from collections.abc import Sequence

from api.auth import MANAGE, VIEW, local_secret, mint_token
from api.observability import logging_config
from ledger.adapters.database import provision
from ledger.adapters.migrate import MigrationError, migrate
from ledger.config import ConfigError, Settings
from ledger.services.tokens import Signer, own_audience, own_issuer

log = logging.getLogger("pickpack.serve")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()  # a wrong value stops here, before anything starts
    if settings.jwt_private_key_file is not None:
        Signer.from_settings(settings)  # and so does a key file that is not an RSA key
    log_config = logging_config(args.log_level, access_log=args.access_log)
    logging.config.dictConfig(log_config)
    database = provision(settings)
    try:
        applied = migrate(database.url)
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
        # Workers (and a single in-process app) find the database through the
        # environment, so they attach to the server this process provisioned.
        os.environ["PICKPACK_DATABASE_URL"] = database.url
        if not (settings.jwt_secret or settings.jwks_url or settings.jwt_private_key_file):
            secret = local_secret(settings.data_dir)
            assert secret is not None
            token = mint_token(
                secret,
                "demo",
                [VIEW, MANAGE],
                issuer=settings.jwt_issuer and own_issuer(settings),
                audience=settings.jwt_audience and own_audience(settings),
            )
            print(
                "\nNo PICKPACK_JWT_SECRET or PICKPACK_JWKS_URL: using the dev secret in "
                f"{settings.data_dir / 'jwt-secret'}.\nDev token (tenant demo, both scopes):\n\n"
                f"  export TOKEN={token}\n",
                flush=True,
            )
        log.info("serving on http://%s:%s", args.host, args.port)
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
            # JSON lines; one request line per request is written by
            # api.observability.RequestObserver, so uvicorn's own access log is off.
            log_config=log_config,
            access_log=False,
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
    signer = Signer.from_settings(settings)  # the own RS256 key, the secret, or the dev secret
    scopes = args.scope or [VIEW, MANAGE]
    print(
        mint_token(
            signer.key,
            args.tenant,
            scopes,
            subject=args.sub,
            ttl_seconds=args.ttl,
            # Carried when configured, so the dev token passes the service's own checks.
            issuer=settings.jwt_issuer and own_issuer(settings),
            audience=settings.jwt_audience and own_audience(settings),
            algorithm=signer.algorithm,
            kid=signer.kid,
        )
    )
    return 0


def _config(args: argparse.Namespace) -> int:
    """Print the effective configuration, secrets and passwords masked."""
    settings = Settings.from_env()
    shown = settings.effective()
    if args.json:
        import orjson

        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return 0
    for name, value in shown.items():
        if value is None:
            print(f"# {name} is unset: {_unset_meaning(name, settings)}")
        else:
            print(f"{name}={value}")
    return 0


def _unset_meaning(name: str, settings: Settings) -> str:
    dev_secret = settings.data_dir / "jwt-secret"
    verification = settings.jwt_secret or settings.jwks_url
    return {
        "PICKPACK_DATABASE_URL": f"embedded PostgreSQL in {settings.data_dir / 'pg'}",
        "PICKPACK_JWT_SECRET": "tokens are checked against PICKPACK_JWKS_URL"
        if verification
        else f"dev secret in {dev_secret}",
        "PICKPACK_JWKS_URL": "HS256 tokens only (PICKPACK_JWT_SECRET)"
        if verification
        else f"dev secret in {dev_secret}",
        "PICKPACK_ORDER_SERVICE_URL": "recalculation requests stay queued (PENDING)",
        "PICKPACK_ORDER_SERVICE_TOKEN": "no Authorization header is sent to the Order Service",
        "PICKPACK_JWT_PRIVATE_KEY_FILE": "own tokens are HS256, /.well-known/jwks.json is empty",
        "PICKPACK_JWT_ISSUER": "iss is not checked",
        "PICKPACK_JWT_AUDIENCE": "aud is not checked",
    }.get(name, "default")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pickpack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and its projection workers")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no JSON line per request (metrics are still counted)",
    )
    serve.set_defaults(func=_serve)

    cfg = sub.add_parser("config", help="print the effective configuration, secrets masked")
    cfg.add_argument("--json", action="store_true", help="as one JSON object (null: unset)")
    cfg.set_defaults(func=_config)

    mig = sub.add_parser("migrate", help="apply pending schema migrations")
    mig.set_defaults(func=_migrate)

    tok = sub.add_parser("token", help="mint a dev token with the local secret")
    tok.add_argument("--tenant", required=True)
    tok.add_argument("--scope", action="extend", nargs="+", help="scopes (default: both)")
    tok.add_argument("--sub", default="dev-user", help="the token's subject (user id)")
    tok.add_argument("--ttl", type=int, default=30 * 24 * 3600, help="lifetime in seconds")
    tok.set_defaults(func=_token)

    from cli.projections import add_commands as add_projection_commands

    add_projection_commands(sub)
    from cli.orders import add_commands as add_order_commands

    add_order_commands(sub)
    from cli.demo import add_commands as add_demo_commands

    add_demo_commands(sub)
    from cli.events import add_commands as add_event_commands

    add_event_commands(sub)
    from devtools.fake_order_service import add_commands as add_fake_commands

    add_fake_commands(sub)
    from cli.clients import add_commands as add_client_commands

    add_client_commands(sub)
    from cli.emporix import add_commands as add_emporix_commands

    add_emporix_commands(sub)
    from devtools.fake_emporix import add_commands as add_fake_emporix_commands

    add_fake_emporix_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if not logging.getLogger().handlers:  # as basicConfig: leave a host's logging alone
        logging.config.dictConfig(logging_config("info", access_log=False))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        # One line naming the variable, no traceback: the operator fixes the value.
        print(f"pickpack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
