"""What the fakes share: a threaded HTTP server on a free port, JSON replies, and running
as a Python object (start, stop) or from the command line until interrupted."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class FakeServer(ThreadingHTTPServer):
    """A request per thread; the threads never keep the process alive."""

    daemon_threads = True


class JSONHandler(BaseHTTPRequestHandler):
    """Quiet (each fake records its requests itself), with JSON replies."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """`body` as JSON (None: an empty body), with `headers` before the content's."""
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def raw_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class HTTPFake:
    """A fake served by `server`: its URL, start() in a thread, stop(), serve_forever()."""

    def __init__(self, server: FakeServer) -> None:
        self._server = server

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def start(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def serve_forever(self) -> None:
        self._server.serve_forever()


def serve_until_interrupted(fake: HTTPFake, banner: str) -> int:
    """Print `banner`, serve until Ctrl-C, exit 0: a fake's command line."""
    print(banner, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever()
    return 0
