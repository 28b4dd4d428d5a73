"""What a person sees: `pickpack` on a terminal (a pseudo-terminal, as a shell gives it)
and through a pipe, and how a command fails.

The console script of this checkout's virtualenv is run, as a user would run it. On a
terminal the screen must hold readable lines only: no JSON, nothing from the embedded
database's wrapper (pgserver's "Now asserting server is running ...", "exiting ...
remaining pids"), and `serve`'s banner. Piped, every line is JSON. The embedded database
these tests use lives in one data directory for the module: its first start is slow.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from devtools.harness.service import free_port

PICKPACK = str(Path(sys.executable).parent / "pickpack")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# What pgserver says at INFO on every start and stop (and initdb's transcript).
WRAPPER_PHRASES = (
    "Now asserting",
    "remaining pids",
    "cleaning last handle",
    "Running commandline",
    "Successful postgres command",
    "PG_VERSION",
    "postmaster",
    "pgserver",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    env.update(TERM="xterm-256color", **extra)
    env.pop("COLUMNS", None)
    env.pop("NO_COLOR", None)
    return env


class Terminal:
    """A process on a pseudo-terminal 200 columns wide; `screen` is what it wrote."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        self.proc = subprocess.Popen(
            [PICKPACK, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.raw = b""

    def read(self, until: Callable[[str], bool], timeout: float, strict: bool = True) -> str:
        """Read until `until(screen)` holds or the terminal closes; the screen so far.
        At the timeout: fail if `strict`, else return what was read."""
        deadline = time.monotonic() + timeout
        while not until(self.screen):
            if time.monotonic() >= deadline:
                assert not strict, f"timed out; screen so far:\n{self.screen}"
                break
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    chunk = b""
                if not chunk:
                    break
                self.raw += chunk
        return self.screen

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw.decode(errors="replace")).replace("\r", "")

    def finish(self, timeout: float) -> int:
        """Wait for the exit, reading meanwhile (a full terminal would block the writer)."""
        self.read(lambda _: self.proc.poll() is not None, timeout)
        code = self.proc.wait(timeout=5)
        self.read(lambda _: False, 1, strict=False)  # what it wrote just before exiting
        os.close(self.master)
        return code


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    term = Terminal(args, env)
    code = term.finish(timeout)
    return code, term.screen


def assert_readable(screen: str) -> None:
    lines = [ln.strip() for ln in screen.splitlines() if ln.strip()]
    assert lines, "nothing on the screen"
    for line in lines:
        assert not line.startswith("{"), f"a JSON line on a terminal: {line}"
        for phrase in WRAPPER_PHRASES:
            assert phrase not in line, f"the database wrapper on the screen: {line}"


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    # Outside pytest's tmp_path for the reason tests/conftest.py's embedded_root gives.
    root = Path(tempfile.mkdtemp(prefix="pp-tty-"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def test_serve_on_a_terminal_shows_a_banner_then_readable_request_lines(data_dir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    term = Terminal(["serve", "--port", str(port)], clean_env(PICKPACK_DATA_DIR=str(data_dir)))
    try:
        screen = term.read(lambda s: "docs " in s and "token " in s, timeout=120)
        health = httpx.get(f"{url}/health", headers={"X-Request-Id": "look-for-me-42"}, timeout=10)
        assert health.status_code == 200
        assert health.headers["X-Request-Id"] == "look-for-me-42"
        screen = term.read(lambda s: "GET /health 200" in s, timeout=30)
        board = next(ln.split()[-1] for ln in screen.splitlines() if "/board#" in ln)
        feed = httpx.get(
            f"{url}/pick-pack/demo/events",
            headers={"Authorization": f"Bearer {board.split('token=', 1)[1]}"},
            timeout=10,
        )
        assert feed.status_code == 200, "the board URL's token is a working dev token"
    finally:
        term.proc.send_signal(signal.SIGINT)
        code = term.finish(timeout=60)
    assert code == 0, term.screen
    assert_readable(term.screen)
    banner = term.screen
    assert f"serving on {url}" in banner
    assert f"database   embedded PostgreSQL in {data_dir / 'pg'}" in banner
    assert f"data       {data_dir}" in banner
    assert f"board      {url}/board#tenant=demo&token=ey" in banner
    assert f"docs       {url}/docs" in banner
    assert "export TOKEN=ey" in banner
    # uvicorn's start-up narration is replaced by the banner; the request line is readable
    for chatter in ("Uvicorn running on", "Waiting for application startup", "Started server"):
        assert chatter not in banner
    # the request id the client saw, on the request's line (docs/how-to/troubleshoot.md)
    assert re.search(r"GET /health 200 [0-9.]+ ms id look-for-me-42", banner)
    assert b"\x1b[" in term.raw, "a terminal gets colour"


def test_serve_at_warning_level_on_a_terminal_still_shows_its_banner(
    db_url: str, tmp_path: Path
) -> None:
    """`--log-level warning` quiets the narration and the request lines, not the banner:
    it is how a person learns the URL and the dev token (docs/reference/metrics-and-logs.md)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(PICKPACK_DATABASE_URL=db_url, PICKPACK_DATA_DIR=str(tmp_path))
    term = Terminal(["serve", "--port", str(port), "--log-level", "warning"], env)
    try:
        deadline = time.monotonic() + 60
        while True:  # listening: uvicorn said "Uvicorn running on", which brings the banner
            assert term.proc.poll() is None and time.monotonic() < deadline, term.screen
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        term.read(lambda s: "export TOKEN=" in s, timeout=10, strict=False)
    finally:
        term.proc.send_signal(signal.SIGINT)
        code = term.finish(timeout=60)
    assert code == 0, term.screen
    screen = term.screen
    assert f"serving on {url}" in screen, screen
    assert f"board      {url}/board#tenant=demo&token=ey" in screen
    assert "export TOKEN=ey" in screen
    assert "GET /ready" not in screen  # the request lines are info: off at warning
    assert_readable(screen)


def test_cli_commands_on_a_terminal_print_their_result_and_nothing_else(
    data_dir: Path, tmp_path: Path
) -> None:
    env = clean_env(PICKPACK_DATA_DIR=str(data_dir))
    code, screen = run(["projections", "status"], env)
    assert code == 0, screen
    assert_readable(screen)
    lines = [ln for ln in screen.splitlines() if ln.strip()]
    assert lines[0].split()[:3] == ["projection", "position", "head"], screen
    assert [ln.split()[0] for ln in lines[1:]] == ["line_totals", "order_status"], screen

    orders = tmp_path / "orders.json"
    orders.write_text(
        json.dumps(
            [{"id": "o1", "siteCode": "main", "entries": [{"entryId": "e1", "productId": "p1"}]}]
        )
    )
    code, screen = run(["orders", "import", str(orders), "--tenant", "demo"], env)
    assert code == 0, screen
    assert_readable(screen)
    assert "imported 1 of 1 orders" in screen
    assert not re.search(r"\b(INFO|WARNING|DEBUG)\b", screen), f"a log line:\n{screen}"


def test_piped_output_is_json_lines(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(
        PICKPACK_DATABASE_URL=db_url, PICKPACK_DATA_DIR=str(tmp_path), PICKPACK_DRAIN_SECONDS="0"
    )
    proc = subprocess.Popen(
        [PICKPACK, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    records = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    assert all(isinstance(r, dict) and {"ts", "level", "logger"} <= set(r) for r in records)
    assert any(r.get("route") == "/ready" and r["status"] == 200 for r in records)
    [banner] = [r for r in records if str(r.get("msg", "")).startswith("serving on")]
    assert f"board {url}/board#tenant=demo&token=ey" in banner["msg"]


def test_an_unreachable_database_is_one_sentence_with_its_exit_code(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        env = clean_env(
            PICKPACK_DATABASE_URL=f"postgresql://pp:hunter2@127.0.0.1:{port}/pp",
            PICKPACK_DATA_DIR=str(tmp_path),
        )
        result = subprocess.run(
            [PICKPACK, "projections", "status"], env=env, capture_output=True, text=True
        )
        debug = subprocess.run(
            [PICKPACK, "projections", "status", "--log-level", "debug"],
            env=env,
            capture_output=True,
            text=True,
        )
    assert result.returncode == 3  # docs/reference/cli.md, "Exit codes"
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"pickpack: cannot reach the database at postgresql://pp:****@127.0.0.1:{port}/pp"
    )
    assert "PICKPACK_DATABASE_URL" in line and line.endswith(".")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert debug.returncode == 3
    assert "Traceback" in debug.stderr and debug.stderr.splitlines()[-1] == line


def test_a_port_in_use_is_one_sentence_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [PICKPACK, "serve", "--port", str(port)],
            env=clean_env(PICKPACK_DATA_DIR=str(tmp_path / "data")),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 7
    [line] = result.stderr.splitlines()
    assert line == (
        f"pickpack: port {port} on 127.0.0.1 is in use: stop what listens there or choose "
        "another with --port."
    )
    assert not (tmp_path / "data" / "pg").exists(), "no database was started"


def test_a_changed_migration_stops_migrate_with_one_sentence_and_code_4(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import main

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path))
    assert main(["migrate"]) == 4  # docs/reference/cli.md, "Exit codes"
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("pickpack: the database's migrations: migration 0001_")
    assert line.endswith("add a new migration instead of editing it.")
