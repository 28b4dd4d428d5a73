"""What a failed command tells its user: one sentence naming what to do, and an exit code.

Every command raises; `cli.main.main` is the one place that turns the exception into the
sentence (on stderr, prefixed ``pickpack:``) and the exit code, so that scripts and
supervisors can tell a wrong setting from a database that is down. The codes are
documented in docs/reference/cli.md; a traceback is shown only with ``--log-level debug``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from ledger.adapters.database import EmbeddedDatabaseError
from ledger.adapters.migrate import MigrationError
from ledger.adapters.pool import database_unavailable, pool_exhausted
from ledger.config import ConfigError


class Exit(IntEnum):
    """The `pickpack` exit codes (docs/reference/cli.md, "Exit codes")."""

    OK = 0
    ITEMS_REFUSED = 1  # the command ran; some items were refused (listed above it)
    USAGE = 2  # a wrong argument or configuration value
    DATABASE_UNREACHABLE = 3
    # A recorded migration's file changed (checksum mismatch), or one that cannot be rolled
    # is pending while processes of another release are connected.
    MIGRATIONS_DISAGREE = 4
    EMBEDDED_DATABASE = 5  # the embedded PostgreSQL did not start
    FILE = 6  # a file or directory cannot be read or written
    PORT_IN_USE = 7
    SOURCE = 8  # a remote service failed, or answered what the command refuses
    DEADLINE = 9  # the command's deadline passed; what it did is kept: run it again
    UNEXPECTED = 70  # a defect: the sentence asks for the traceback and a report
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
    BROKEN_PIPE = 141  # the reader of the output left (128 + SIGPIPE); nothing is printed


class CommandError(Exception):
    """A command's own refusal: the message is the sentence, `code` the exit code."""

    code: Exit = Exit.USAGE

    def __init__(self, sentence: str, code: Exit | None = None) -> None:
        super().__init__(sentence)
        if code is not None:
            self.code = code


class UsageError(CommandError):
    code = Exit.USAGE


class PortInUse(CommandError):
    code = Exit.PORT_IN_USE


@dataclass(frozen=True)
class Failure:
    code: Exit
    sentence: str


def explain(exc: BaseException, database: str) -> Failure:
    """The sentence and exit code for `exc`; `database` names the database in use
    (its URL with the password masked, or the embedded server's directory)."""
    if isinstance(exc, CommandError):
        return Failure(exc.code, _sentence(str(exc)))
    if isinstance(exc, ConfigError):
        return Failure(
            Exit.USAGE,
            f"{exc}; correct it in the environment "
            "(docs/reference/configuration.md lists every setting).",
        )
    if isinstance(exc, MigrationError):
        return Failure(Exit.MIGRATIONS_DISAGREE, _sentence(f"the database's migrations: {exc}"))
    if isinstance(exc, EmbeddedDatabaseError):
        return Failure(
            Exit.EMBEDDED_DATABASE,
            f"{exc} (its log is above): check that the directory is writable and the disk "
            "has room, or set PICKPACK_DATABASE_URL to use another PostgreSQL.",
        )
    if database_unavailable(exc) or pool_exhausted(exc):
        return Failure(
            Exit.DATABASE_UNREACHABLE,
            f"cannot reach {database} ({_reason(exc)}): check that PostgreSQL is running "
            "and that PICKPACK_DATABASE_URL names it.",
        )
    if isinstance(exc, json.JSONDecodeError):
        return Failure(Exit.FILE, f"the file is not valid JSON ({exc}): fix it and run again.")
    if isinstance(exc, OSError) and exc.filename:
        return Failure(
            Exit.FILE,
            f"cannot use {exc.filename} ({exc.strerror or exc}): check that it exists and "
            "that this user may read and write it (PICKPACK_DATA_DIR moves the data directory).",
        )
    if isinstance(exc, KeyboardInterrupt):
        return Failure(Exit.INTERRUPTED, "interrupted.")
    return Failure(
        Exit.UNEXPECTED,
        f"unexpected error ({type(exc).__name__}: {_first_line(str(exc)) or 'no message'}); "
        "rerun with --log-level debug for the traceback and report it.",
    )


def _reason(exc: BaseException) -> str:
    """libpq's reason, without its preamble: 'Connection refused', 'password
    authentication failed for user "x"', 'database "pp" does not exist'."""
    line = _first_line(str(exc.__cause__ or exc) if pool_exhausted(exc) else str(exc))
    if pool_exhausted(exc) and not line:
        return "no connection within the timeout"
    reason = line.rsplit("failed: ", 1)[-1]
    return reason.removeprefix("FATAL:").strip() or type(exc).__name__


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0].strip()


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."
