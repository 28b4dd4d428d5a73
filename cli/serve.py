"""`pickpack serve`: migrate, then the API and its workers on uvicorn, with a banner.

On a terminal (text logs) the banner says what a person needs next: the URL, the
database in use, the data directory, the board's URL with the dev token in its fragment
(a fragment never reaches a server's log), and the docs; uvicorn's own start-up narration
is replaced by it, printed once the socket listens. In JSON form the same facts are one
log line, so a log collector sees nothing but JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

from uvicorn.main import STARTUP_FAILURE

from api.observability import logging_config
from bootstrap.opened import opened
from cli.errors import PortInUse, UsageError
from cli.stopping import IN_FLIGHT_SECONDS, DrainingServer, run_workers
from ledger.config import Settings, mask_password
from ledger.services.signing import MANAGE, VIEW, local_secret, mint_token
from ledger.services.tokens import Signer, own_audience, own_issuer

log = logging.getLogger("pickpack.serve")

DEMO_TENANT = "demo"
_ALL_INTERFACES = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}


@dataclass(frozen=True)
class Banner:
    url: str
    database: str
    data_dir: str
    token: str | None  # the dev token, when no verification is configured
    verification: str | None  # else what verifies tokens (for the hint)

    @property
    def board(self) -> str:
        fragment = f"tenant={DEMO_TENANT}" + (f"&token={self.token}" if self.token else "")
        return f"{self.url}/board#{fragment}"

    @property
    def docs(self) -> str:
        return f"{self.url}/docs"

    def markup(self) -> str:
        """The banner for a terminal (rich markup; URLs and paths are escaped)."""
        from rich.markup import escape as e

        if self.token:
            token = (
                f"export TOKEN={e(self.token)}\n"
                f"             [dim](dev token: tenant {DEMO_TENANT}, both scopes; "
                f"dev secret in {e(self.data_dir)}/jwt-secret)[/]"
            )
        elif self.verification in ("PICKPACK_JWT_SECRET", "PICKPACK_JWT_PRIVATE_KEY_FILE"):
            token = f"[dim]`pickpack token --tenant {DEMO_TENANT}` mints one[/]"
        else:
            token = "[dim]from your identity provider (PICKPACK_JWKS_URL)[/]"
        return (
            f"\n[bold]pickpack-ledger[/] serving on [bold cyan]{e(self.url)}[/]"
            "  [dim](Ctrl+C stops it)[/]\n"
            f"  database   {e(self.database)}\n"
            f"  data       {e(self.data_dir)}\n"
            f"  board      {e(self.board)}\n"
            f"  docs       {e(self.docs)}\n"
            f"  token      {token}\n"
        )

    def line(self) -> str:
        """The same facts as one log message (JSON logs)."""
        parts = [
            f"serving on {self.url}",
            f"database {self.database}",
            f"data {self.data_dir}",
            f"board {self.board}",
            f"docs {self.docs}",
        ]
        return "; ".join(parts)

    def token_line(self) -> str | None:
        """The dev token as a warning of its own (JSON logs): a dev secret is in use,
        and `serve --log-level warning` must still say how to get in."""
        if not self.token:
            return None
        return (
            f"no PICKPACK_JWT_SECRET or PICKPACK_JWKS_URL: dev secret in {self.data_dir}/"
            f"jwt-secret; dev token (tenant {DEMO_TENANT}, both scopes): export "
            f"TOKEN={self.token}"
        )


class StartupFilter(logging.Filter):
    """On uvicorn's ``uvicorn.error`` logger in text form: its INFO narration ("Started
    server process", "Waiting for application startup." ...) is dropped, and its "Uvicorn
    running on" line, written once the socket listens, becomes the banner, whatever the
    level (the logger is left at INFO for it). Records at the chosen level or above pass,
    but INFO ones only at debug level (the banner says it all)."""

    def __init__(self, banner: str = "", level: str = "info") -> None:
        super().__init__()
        self.banner = banner
        self.threshold = logging.getLevelName(level.upper())
        self.verbose = self.threshold <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith("Uvicorn running on"):
            from rich.console import Console

            Console(soft_wrap=True, highlight=False).print(self.banner)
        if record.levelno < self.threshold:
            return False
        return self.verbose or record.levelno >= logging.WARNING


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()  # a wrong value stops here, before anything starts
    if settings.jwt_private_key_file is not None:
        Signer.from_settings(settings)  # and so does a key file that is not an RSA key
    _check_port(args.host, args.port)
    log_config = logging_config(args.log_level, access_log=args.access_log, fmt=args.log_format)
    # SIGTERM stops start-up too (a database that does not answer, a long migration): an
    # orderly exit, not a wait for a bound. uvicorn takes the signal over while it runs.
    signal.signal(signal.SIGTERM, _exit_quietly)
    with opened(settings) as parts:
        database, applied = parts.database, parts.applied
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
        # Workers (and a single in-process app) find the database through the
        # environment, so they attach to the server this process provisioned.
        os.environ["PICKPACK_DATABASE_URL"] = database.url
        banner = _banner(args, settings)
        if args.log_format == "text":
            log_config["filters"] = {
                "startup": {
                    "()": "cli.serve.StartupFilter",
                    "banner": banner.markup(),
                    "level": args.log_level,
                }
            }
            startup = log_config["loggers"]["uvicorn.error"]
            startup["filters"] = ["startup"]
            if startup["level"] != "DEBUG":
                startup["level"] = "INFO"  # the filter applies the chosen level
        else:
            log.info("%s", banner.line())
            if token_line := banner.token_line():
                log.warning("%s", token_line)
        # uvicorn re-raises the stop signal to the handler that was there before it,
        # once stopped. Make that handler an orderly exit, so leaving `opened` stops
        # the embedded PostgreSQL instead of leaving it running.
        signal.signal(signal.SIGTERM, _exit_quietly)
        config = uvicorn.Config(
            "api.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            # uvicorn's httptools protocol with every connection bounded in size and
            # time before the app sees it (api/http_guard.py).
            http=guarded_protocol(settings),
            # Every level is in log_config. Given a log_level too, uvicorn would set its
            # loggers to it after applying log_config: at warning, uvicorn.error would
            # drop the INFO record that brings the text banner before StartupFilter saw it.
            log_level=None,
            # One request line per request is written by api.observability.RequestObserver
            # (JSON, or readable in text form), so uvicorn's own access log is off.
            log_config=log_config,
            access_log=False,
            timeout_graceful_shutdown=IN_FLIGHT_SECONDS,
        )
        # SIGTERM drains first, a second signal stops at once (cli/stopping.py).
        if config.workers > 1:
            run_workers(config)
        else:
            server = DrainingServer(
                config,
                settings.drain_seconds,
                defer_silent_seconds=settings.header_timeout_seconds,
            )
            # Ctrl+C is re-raised once stopped: a normal end, as with uvicorn.run.
            with contextlib.suppress(KeyboardInterrupt):
                server.run()
            if not server.started:
                raise SystemExit(STARTUP_FAILURE)  # as uvicorn.run: the app did not start
    return 0


def guarded_protocol(settings: Settings) -> Any:
    """The HTTP protocol `serve` runs: httptools with the configured connection limits
    (the cap fitted to the open-file limit). A partial of a module-level class, so that
    uvicorn can hand it to worker processes."""
    from api.http_guard import ConnectionLimits, GuardedHttpToolsProtocol

    limits = ConnectionLimits.from_settings(settings).within_open_files()
    return functools.partial(GuardedHttpToolsProtocol, limits=limits)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _banner(args: argparse.Namespace, settings: Settings) -> Banner:
    host = _ALL_INTERFACES.get(args.host, f"[{args.host}]" if ":" in args.host else args.host)
    if settings.database_url:
        database = mask_password(settings.database_url)
    else:
        database = f"embedded PostgreSQL in {settings.data_dir / 'pg'}"
    token = None
    verification = None
    if settings.jwt_secret:
        verification = "PICKPACK_JWT_SECRET"
    elif settings.jwt_private_key_file:
        verification = "PICKPACK_JWT_PRIVATE_KEY_FILE"
    elif settings.jwks_url:
        verification = "PICKPACK_JWKS_URL"
    else:
        secret = local_secret(settings.data_dir)
        assert secret is not None
        token = mint_token(
            secret,
            DEMO_TENANT,
            [VIEW, MANAGE],
            issuer=settings.jwt_issuer and own_issuer(settings),
            audience=settings.jwt_audience and own_audience(settings),
        )
    return Banner(
        f"http://{host}:{args.port}", database, str(settings.data_dir), token, verification
    )


def _check_port(host: str, port: int) -> None:
    """Refuse a port already taken before starting the database, in one sentence
    (uvicorn would log an error line and exit 1 after everything had started)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(
            f"cannot resolve --host {host} ({exc.strerror}): give a local address"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is in use: stop what listens there or choose "
                    "another with --port"
                ) from None
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror}): give a local address with --host"
            ) from None
