"""The `pickpack` command line: serve, migrate, token, config, projections, orders, demo, fakes."""

from __future__ import annotations

import argparse
import logging.config
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from api.observability import logging_config
from bootstrap.opened import opened
from cli.errors import Exit, UsageError, explain
from ledger.config import ConfigError, Settings, mask_password
from ledger.services.signing import MANAGE, VIEW, mint_token
from ledger.services.tokens import Signer, own_audience, own_issuer

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "text", "json")
LOG_FORMAT_VARIABLE = "PICKPACK_LOG_FORMAT"


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one sentence (cli.errors), not usage plus a message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the web stack (FastAPI, uvicorn) is most of a command's start-up, and
    # only `serve` needs it.
    from cli.serve import serve

    return serve(args)


def _migrate(_: argparse.Namespace) -> int:
    with opened() as parts:
        applied = parts.applied
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
        "PICKPACK_DATABASE_REPLICA_URL": "every read goes to PICKPACK_DATABASE_URL",
    }.get(name, "default")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pickpack", description=__doc__)
    # Accepted anywhere on the line (main() takes them out first), so every command,
    # including those added by other modules, has them.
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        help="serve: info; other commands: warning (debug also shows tracebacks)",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help=f"text on a terminal, else JSON lines (auto; or {LOG_FORMAT_VARIABLE})",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serving = sub.add_parser("serve", help="run the API and its projection workers")
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument("--workers", type=int, default=1)
    serving.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no line per request (metrics are still counted)",
    )
    serving.set_defaults(func=_serve)

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
    from cli.database import add_commands as add_database_commands

    add_database_commands(sub)
    from cli.store import add_commands as add_store_commands

    add_store_commands(sub)
    from cli.archive import add_commands as add_archive_commands

    add_archive_commands(sub)
    from cli.clients import add_commands as add_client_commands

    add_client_commands(sub)
    from cli.emporix import add_commands as add_emporix_commands

    add_emporix_commands(sub)
    from devtools.fake_emporix import add_commands as add_fake_emporix_commands

    add_fake_emporix_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; any failure becomes one sentence on stderr and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    level = "warning"
    try:
        level, fmt, rest = _log_options(argv)
        if not logging.getLogger().handlers:  # as basicConfig: leave a host's logging alone
            logging.config.dictConfig(logging_config(level, access_log=False, fmt=fmt))
        args = build_parser().parse_args(rest)
        args.log_level, args.log_format = level, fmt
        code = int(args.func(args))
        sys.stdout.flush()  # so that a closed pipe is met here, not in the exit's flush
        return code
    except BrokenPipeError:
        # The reader of the output left (`pickpack config | head -3`): as any Unix tool,
        # stop quietly. Pointing stdout at /dev/null keeps the interpreter's final flush
        # from failing again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(Exit.BROKEN_PIPE)
    except (Exception, KeyboardInterrupt) as exc:
        failure = explain(exc, _database_in_use())
        if level == "debug":
            traceback.print_exception(exc, file=sys.stderr)
        print(f"pickpack: {failure.sentence}", file=sys.stderr)
        return int(failure.code)


def _log_options(argv: list[str]) -> tuple[str, str, list[str]]:
    """--log-level and --log-format, wherever they are; the level's default depends on
    the command (serve narrates at info; a one-shot command prints only its result)."""
    options = Parser(prog="pickpack", add_help=False, allow_abbrev=False)
    options.add_argument("--log-level", type=str.lower, choices=LEVELS)
    options.add_argument("--log-format", type=str.lower, choices=FORMATS)
    known, rest = options.parse_known_args(argv)
    serving = next((a for a in rest if not a.startswith("-")), None) == "serve"
    level = known.log_level or ("info" if serving else "warning")
    chosen = (known.log_format or os.environ.get(LOG_FORMAT_VARIABLE) or "auto").lower()
    if chosen not in FORMATS:
        raise ConfigError(
            f"invalid configuration: {LOG_FORMAT_VARIABLE}={chosen!r}: one of {', '.join(FORMATS)}"
        )
    if chosen == "auto":
        chosen = "text" if sys.stderr.isatty() else "json"
    return level, chosen, rest


def _database_in_use() -> str:
    """What an error message calls the database: the masked URL, or the embedded one."""
    try:
        settings = Settings.from_env()
    except ConfigError:
        return "the database"
    if settings.database_url:
        return f"the database at {mask_password(settings.database_url)}"
    return f"the embedded PostgreSQL in {settings.data_dir / 'pg'}"


if __name__ == "__main__":
    sys.exit(main())
