"""How a failed `pickpack` command is told (cli/errors.py): one sentence, a documented code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from cli.errors import CommandError, Exit, UsageError, explain
from cli.main import main
from ledger.adapters.database import EmbeddedDatabaseError
from ledger.adapters.migrate import MigrationError
from ledger.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DB = "the database at postgresql://pp:****@db:5432/pp"


def one_sentence(text: str) -> bool:
    return "\n" not in text and text.endswith(".") and "Traceback" not in text


@pytest.mark.parametrize(
    ("exc", "code", "says"),
    [
        (ConfigError("invalid configuration: PICKPACK_X='1': bad"), Exit.USAGE, "correct it"),
        (UsageError("name one projection or give --all"), Exit.USAGE, "--all"),
        (
            MigrationError(
                "migration 0003_x.sql was already applied (as 0003_x.sql) but its file has "
                "changed since; add a new migration instead of editing it"
            ),
            Exit.MIGRATIONS_DISAGREE,
            "add a new migration",
        ),
        (
            EmbeddedDatabaseError("the embedded PostgreSQL in /d/pg did not start"),
            Exit.EMBEDDED_DATABASE,
            "PICKPACK_DATABASE_URL",
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "10.0.0.1", port 5432 failed: '
                'FATAL:  password authentication failed for user "pp"\nsecond line'
            ),
            Exit.DATABASE_UNREACHABLE,
            f'cannot reach {DB} (password authentication failed for user "pp")',
        ),
        (
            FileNotFoundError(2, "No such file or directory", "orders.json"),
            Exit.FILE,
            "cannot use orders.json (No such file or directory)",
        ),
        (json.JSONDecodeError("Expecting value", "x", 0), Exit.FILE, "not valid JSON"),
        (CommandError("x.json holds no JSON array: give one", Exit.FILE), Exit.FILE, "give one"),
        (KeyboardInterrupt(), Exit.INTERRUPTED, "interrupted"),
        (ZeroDivisionError("division by zero"), Exit.UNEXPECTED, "--log-level debug"),
    ],
)
def test_each_failure_is_one_sentence_with_its_code(
    exc: BaseException, code: Exit, says: str
) -> None:
    failure = explain(exc, DB)
    assert failure.code == code
    assert one_sentence(failure.sentence), failure.sentence
    assert says in failure.sentence


def test_every_exit_code_is_documented_in_the_cli_reference() -> None:
    text = (ROOT / "docs" / "reference" / "cli.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| `(\d+)` \| (.+?) \|", section, flags=re.M))
    assert set(rows) == {str(int(code)) for code in Exit}, rows


def test_a_usage_error_is_one_sentence_not_argparse_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--port", "eighty"]) == Exit.USAGE
    err = capsys.readouterr().err
    assert err == (
        "pickpack: argument --port: invalid int value: 'eighty' (see `pickpack serve --help`).\n"
    )


def test_log_options_are_taken_anywhere_on_the_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path))
    assert main(["--log-format", "json", "token", "--tenant", "t", "--log-level", "debug"]) == 0
    assert main(["token", "--tenant", "t", "--log-format", "xml"]) == Exit.USAGE
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_the_console_script_exits_with_the_code(tmp_path: Path) -> None:
    # The exit code reaches the shell (not only main's return value).
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pickpack"), "projections", "rebuild"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PICKPACK_DATA_DIR": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == Exit.USAGE
    assert result.stderr == (
        "pickpack: name one projection (line_totals, order_status) or give --all.\n"
    )


def test_a_reader_that_leaves_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`pickpack config | head -3`: the pipe closes before everything is written."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pickpack"), "config"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PICKPACK_DATA_DIR": str(tmp_path)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the command, still importing, writes its first line
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == Exit.BROKEN_PIPE
    assert stderr == b""
