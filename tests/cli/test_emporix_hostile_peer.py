"""`pickpack emporix import-events` against a broken or hostile peer: every failure is
one sentence with its documented exit code (docs/reference/cli.md), nothing the peer
sends can make it run for ever, hold a huge page, crash after a commit, or print its
text as markup."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from cli.main import main
from tests.cli.test_emporix_import import emporix_event, recorded

TENANT = "demo"
Pages = Callable[[int, int], Any]  # (pageNumber, pageSize) -> a JSON value, or bytes


class HostilePeer:
    """A token endpoint, and an event feed answering whatever `pages` says."""

    def __init__(self, pages: Pages, trickle: float | None = None, status: int = 200) -> None:
        self.pages = pages
        self.trickle = trickle
        self.status = status
        self.asked: list[int] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send(200, orjson.dumps({"access_token": "t", "expires_in": 3600}))

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                page, size = int(query["pageNumber"][0]), int(query["pageSize"][0])
                peer.asked.append(page)
                body = peer.pages(page, size)
                raw = body if isinstance(body, bytes) else orjson.dumps(body)
                self._send(peer.status, raw, peer.trickle)

            def _send(self, status: int, raw: bytes, trickle: float | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                try:
                    if trickle is None:
                        self.wfile.write(raw)
                        return
                    for byte in raw:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(trickle)
                except OSError:
                    pass  # the importer hung up

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the importer hanging up on a page it refuses is the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def peer_of(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
    monkeypatch.setenv("PICKPACK_DATA_DIR", str(tmp_path / "data"))
    started: list[HostilePeer] = []

    def make(pages: Pages, **kw: Any) -> HostilePeer:
        started.append(HostilePeer(pages, **kw))
        return started[-1]

    yield make
    for peer in started:
        peer.server.shutdown()


def run(peer: HostilePeer, *extra: str) -> int:
    argv = ["emporix", "import-events", "--tenant", TENANT, "--url", peer.url]
    argv += ["--client-id", "c", "--client-secret", "s", "--page-size", "10", "--retries", "0"]
    return main([*argv, *extra])


def sentence(err: str) -> str:
    """The failure's sentence: the one `pickpack:` line on stderr."""
    lines = [line for line in err.splitlines() if line.startswith("pickpack:")]
    assert len(lines) == 1, err
    return lines[0]


def full_page(page: int, size: int) -> list[dict[str, Any]]:
    page = max(page, 1)  # numbered from 1, page 0 read as 1 (as Emporix does)
    return [emporix_event(page * size + i, eventId=f"e-{page}-{i}") for i in range(size)]


def test_endless_full_pages_stop_at_the_deadline_with_exit_9(
    peer_of: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = peer_of(full_page)
    started = time.monotonic()
    assert run(peer, "--deadline", "2") == 9
    assert time.monotonic() - started < 5
    said = sentence(capsys.readouterr().err)
    assert "deadline" in said and "run again to resume" in said
    # What was recorded stays, and its progress was saved with each page: the next run
    # goes on after the last page recorded, not from the first.
    done = len(recorded(db_url))
    assert done > 0 and done % 10 == 0
    asked_before = len(peer.asked)
    assert run(peer, "--deadline", "1") == 9
    assert min(peer.asked[asked_before:]) == done // 10 + 1


def test_a_service_that_ignores_page_number_is_refused_with_exit_8(
    peer_of: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = peer_of(lambda page, size: full_page(1, size))
    assert run(peer, "--deadline", "30") == 8
    said = sentence(capsys.readouterr().err)
    assert "repeats page" in said and "ignores pageNumber" in said
    assert len(recorded(db_url)) == 10  # the first page, once


def test_a_page_with_more_events_than_asked_is_refused_unrecorded(
    peer_of: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = peer_of(lambda page, size: full_page(page, 50))
    assert run(peer) == 8
    assert "50 events, more than the 10 asked for" in sentence(capsys.readouterr().err)
    assert recorded(db_url) == {}


def test_a_page_larger_than_its_bound_is_not_read_whole(
    peer_of: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = b"[" + b" " * (8 * 1024 * 1024) + b"]"  # 8 MiB of nothing for 10 events
    peer = peer_of(lambda page, size: huge)
    assert run(peer) == 8
    assert "larger than 1048576 bytes" in sentence(capsys.readouterr().err)
    assert recorded(db_url) == {}


def test_a_trickled_body_stops_at_the_deadline(
    peer_of: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = peer_of(lambda page, size: full_page(page, size), trickle=0.2)
    started = time.monotonic()
    assert run(peer, "--deadline", "1.5") == 9
    assert time.monotonic() - started < 4
    assert "deadline" in sentence(capsys.readouterr().err)


def test_a_page_whose_last_item_is_null_is_recorded_and_its_progress_saved(
    peer_of: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def pages(page: int, size: int) -> list[Any]:
        if page <= 1:
            return [*full_page(1, size)[: size - 1], None]
        return full_page(page, 3)

    peer = peer_of(pages)
    assert run(peer) == 1  # one item refused, listed; no crash after the commit
    out = capsys.readouterr()
    assert "an event must be a JSON object" in out.err
    assert out.out.strip().splitlines()[-1].startswith("read 13, recorded 12,")
    assert len(recorded(db_url)) == 12
    # A re-run reads it again (the last run finished) and finds it all there.
    assert run(peer) == 1
    assert "already there 12" in capsys.readouterr().out


def test_remote_text_is_printed_as_text_never_as_markup(
    peer_of: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = peer_of(lambda page, size: b"[/bold] maintenance [red]window\x1b[2J", status=503)
    assert run(peer) == 8
    said = sentence(capsys.readouterr().err)
    assert "[/bold] maintenance [red]window" in said
    assert "\x1b" not in said and "MarkupError" not in said


def test_a_problem_item_with_markup_is_listed_as_text(
    peer_of: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = peer_of(lambda page, size: [emporix_event(1, eventId="[/bold]", site="[red]")])
    assert run(peer) == 1
    err = capsys.readouterr().err
    assert "[/bold]" in err and "MarkupError" not in err
