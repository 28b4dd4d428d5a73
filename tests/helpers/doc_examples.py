"""Run a document's shell examples against a live service and check their output.

The convention (CONTRIBUTING.md, "Writing docs", says the same to authors):

- A fenced block whose info string starts with ``sh`` is a shell example. It is run with
  ``bash -euo pipefail`` in the document's order, in one working directory per document.
  Shell variables a block assigns (``NAME=...`` or ``export NAME=...`` at the start of a
  line) are kept for the blocks after it, as in one terminal session.
- ``sh no-run`` marks a block that is shown but not run (``pickpack serve`` itself, which
  the harness starts; installing; anything that would not return). ``sh eventually`` marks
  a block whose output settles in the background (a delivery to the Order Service): it is
  run again, every 0.3 s for up to 15 s, until its output matches. ``sh background``
  marks a block that starts something that keeps running (a fake Emporix): it is started,
  the next block runs once the port of its ``--port N`` accepts connections, and it is
  stopped when the document ends.
- The fenced block right after a run block (nothing but blank lines between them), if it
  is ``json`` or ``text``, is that block's expected standard output. Without one, the
  block need only exit 0.
- In expected JSON (one or more JSON values one after the other), a string value
  ``"..."`` matches any value, and an object with the key ``"..."`` may have keys beyond
  the ones it lists. Objects otherwise match by keys, whatever their order; arrays match
  item by item.
- In expected text, a line ``...`` matches any run of lines (none included); other lines
  must be equal, trailing spaces ignored.
- ``http://127.0.0.1:8000`` in a block or its expected output stands for the live
  service, ``http://127.0.0.1:8090`` for the live fake Order Service (started only when
  the document names that address; the service is then started with
  ``PICKPACK_ORDER_SERVICE_URL`` pointing at it). ``127.0.0.1:8091`` is a free port the
  harness picks for the document's own background server (a fake Emporix): every
  ``http://127.0.0.1:8091`` and ``--port 8091`` in the document stands for it.
- The environment: ``pickpack`` of this checkout first on ``PATH``; the service's
  ``PICKPACK_DATABASE_URL`` (a database made for the document) and ``PICKPACK_DATA_DIR``;
  ``TOKEN``, a dev token for tenant ``demo`` with both scopes (a document may mint its own).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SERVICE_URL = "http://127.0.0.1:8000"
ORDER_SERVICE_URL = "http://127.0.0.1:8090"
EMPORIX_ADDRESS = "127.0.0.1:8091"  # a document's own background server (a fake Emporix)
ELLIPSIS = "..."
EVENTUALLY_SECONDS = 15.0

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)[ \t]*(?P<info>[^\n`]*)$")
_ASSIGNMENT = re.compile(r"^(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=", flags=re.M)


@dataclass(frozen=True)
class Block:
    lang: str
    flags: frozenset[str]
    text: str
    line: int  # of the opening fence, 1-based
    end: int  # of the closing fence


@dataclass(frozen=True)
class Example:
    block: Block
    expected: Block | None

    @property
    def run(self) -> bool:
        return "no-run" not in self.block.flags

    @property
    def eventually(self) -> bool:
        return "eventually" in self.block.flags

    @property
    def background(self) -> bool:
        return "background" in self.block.flags


def blocks(markdown: str) -> list[Block]:
    """Every fenced block of a document, in order."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        found.append(
            Block(
                lang=m.group("lang"),
                flags=frozenset(m.group("info").split()),
                text="\n".join(lines[start + 1 : i]) + "\n",
                line=start + 1,
                end=i + 1,
            )
        )
        i += 1
    return found


def examples(markdown: str) -> list[Example]:
    """The shell blocks of a document with their expected output, in order."""
    lines = markdown.splitlines()
    found = blocks(markdown)
    out: list[Example] = []
    for k, block in enumerate(found):
        if block.lang != "sh":
            continue
        expected = None
        if k + 1 < len(found):
            after = found[k + 1]
            between = lines[block.end : after.line - 1]
            if after.lang in ("json", "text") and all(not s.strip() for s in between):
                expected = after
        out.append(Example(block, expected))
    return out


# Matching


def json_values(text: str) -> list[Any]:
    """The JSON values written one after the other in `text`."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    i = 0
    text = text.strip()
    while i < len(text):
        value, i = decoder.raw_decode(text, i)
        values.append(value)
        while i < len(text) and text[i].isspace():
            i += 1
    return values


def json_matches(expected: Any, actual: Any) -> bool:
    if expected == ELLIPSIS:
        return True
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        open_ended = expected.get(ELLIPSIS) == ELLIPSIS
        keys = set(expected) - {ELLIPSIS} if open_ended else set(expected)
        if not keys <= set(actual) or (not open_ended and set(actual) != keys):
            return False
        return all(json_matches(expected[k], actual[k]) for k in keys)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(json_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def text_matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == ELLIPSIS:
        return any(text_matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and text_matches(expected[1:], actual[1:])


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_matches(expected: Block, output: str, urls: dict[str, str]) -> bool:
    want = substitute(expected.text, urls)
    if expected.lang == "json":
        try:
            actual = json_values(output)
        except ValueError:
            return False
        wanted = json_values(want)
        return len(wanted) == len(actual) and all(
            json_matches(e, a) for e, a in zip(wanted, actual, strict=True)
        )
    return text_matches(_lines(want), _lines(output))


def substitute(text: str, urls: dict[str, str]) -> str:
    for documented, live in urls.items():
        text = text.replace(documented, live)
    return text


# Running


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


class Session:
    """One terminal session of a document: blocks run one after the other, keeping the
    variables they assign in a state file each next block sources first."""

    def __init__(self, workdir: Path, env: dict[str, str], urls: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.urls = urls
        self.state = workdir / ".doc-session-state"
        self.state.write_text("")
        self.background: list[subprocess.Popen[bytes]] = []

    def start(self, block: Block, timeout: float = 60.0) -> Outcome:
        """Start a `background` block (its output in a log beside the work directory) and
        wait until the port of its `--port N` accepts connections."""
        body = substitute(block.text, self.urls)
        log = self.workdir.parent / f"background-{len(self.background) + 1}.log"
        proc = subprocess.Popen(
            [
                "bash",
                "--noprofile",
                "--norc",
                "-euo",
                "pipefail",
                "-c",
                f'source "{self.state}"\n{body}\n',
            ],
            cwd=self.workdir,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its children are stopped with it
        )
        self.background.append(proc)
        port = re.search(r"--port[ =](\d+)", body)
        deadline = time.monotonic() + timeout
        while port is not None and time.monotonic() < deadline:
            if proc.poll() is not None:
                return Outcome(proc.returncode or 1, "", log.read_text())
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", int(port.group(1)))) == 0:
                    return Outcome(0, "", "")
            time.sleep(0.1)
        if port is None:
            return Outcome(0, "", "")
        return Outcome(-1, "", log.read_text() + f"\n(no answer on port {port.group(1)})")

    def stop(self) -> None:
        """Stop what `background` blocks started."""
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        self.background = []

    def run(self, block: Block, timeout: float = 60.0) -> Outcome:
        body = substitute(block.text, self.urls)
        names = sorted(set(_ASSIGNMENT.findall(body)))
        script = f'source "{self.state}"\n{body}\n'
        if names:
            script += f'declare -p {" ".join(names)} >> "{self.state}"\n'
        try:
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-euo", "pipefail", "-c", script],
                cwd=self.workdir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            late = f"\n(timed out after {timeout} s)"
            return Outcome(-1, _text(e.stdout), _text(e.stderr) + late)
        return Outcome(done.returncode, done.stdout, done.stderr)


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def failure(doc: Path, example: Example, outcome: Outcome, why: str) -> str:
    parts = [
        f"{doc.name}, block at line {example.block.line}: {why}",
        "--- block ---",
        example.block.text.rstrip(),
    ]
    if example.expected is not None:
        parts += ["--- expected ---", example.expected.text.rstrip()]
    parts += [
        f"--- actual (exit code {outcome.code}) ---",
        outcome.stdout.rstrip(),
        "--- stderr ---",
        outcome.stderr.rstrip(),
    ]
    return "\n".join(parts)


def check_document(doc: Path, session: Session) -> None:
    """Run every example of `doc`; raise AssertionError at the first that fails."""
    try:
        _check_examples(doc, session)
    finally:
        session.stop()


def _check_examples(doc: Path, session: Session) -> None:
    for example in examples(doc.read_text()):
        if not example.run:
            continue
        if example.background:
            outcome = session.start(example.block)
            if outcome.code != 0:
                raise AssertionError(failure(doc, example, outcome, "did not start"))
            continue
        deadline = time.monotonic() + (EVENTUALLY_SECONDS if example.eventually else 0)
        while True:
            outcome = session.run(example.block)
            ok = outcome.code == 0 and (
                example.expected is None
                or output_matches(example.expected, outcome.stdout, session.urls)
            )
            if ok:
                break
            if time.monotonic() >= deadline:
                why = "exited with an error" if outcome.code else "output differs"
                raise AssertionError(failure(doc, example, outcome, why))
            time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pickpack() -> list[str]:
    return [sys.executable, "-m", "cli.main"]


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def clean_env() -> dict[str, str]:
    """The caller's environment without any pickpack setting: the document says what the
    service runs with, not the machine the test runs on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["PICKPACK_DRAIN_SECONDS"] = "0"  # no balancer here: SIGTERM stops without a drain
    return env


@contextmanager
def live_services(
    doc: Path, database_url: str, data_dir: Path, logs: Path
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """`pickpack serve` (and `pickpack fake-order-service` when the document names its
    address), each on a free port; yields the URL substitutions and the blocks' env."""
    root = Path(__file__).resolve().parents[2]
    env = clean_env()
    env["PICKPACK_DATABASE_URL"] = database_url
    env["PICKPACK_DATA_DIR"] = str(data_dir)
    urls: dict[str, str] = {}
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, args: list[str], env: dict[str, str], ready: str) -> str:
        """Run `pickpack ARGS --port P` (its output in LOGS/NAME.log) until READY
        answers 200; its base URL."""
        port = free_port()
        log = logs / f"{name}.log"
        proc = subprocess.Popen(
            [*_pickpack(), *args, "--port", str(port)],
            cwd=root,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        _wait(base + ready, proc, log)
        return base

    try:
        serve_env = dict(env)
        if EMPORIX_ADDRESS in doc.read_text():
            port = free_port()
            urls[f"http://{EMPORIX_ADDRESS}"] = f"http://127.0.0.1:{port}"
            urls[f"--port {EMPORIX_ADDRESS.rsplit(':', 1)[1]}"] = f"--port {port}"
        if ORDER_SERVICE_URL in doc.read_text():
            urls[ORDER_SERVICE_URL] = start(
                "fake-order-service", ["fake-order-service"], env, "/_control/requests"
            )
            serve_env["PICKPACK_ORDER_SERVICE_URL"] = urls[ORDER_SERVICE_URL]
        urls[SERVICE_URL] = start("serve", ["--log-format", "json", "serve"], serve_env, "/ready")
        minted = subprocess.run(
            [*_pickpack(), "token", "--tenant", "demo"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        env["TOKEN"] = minted.stdout.strip()
        yield urls, env
    finally:
        for proc in reversed(procs):
            _stop(proc)
