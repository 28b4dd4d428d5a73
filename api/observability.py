"""Request metrics and the request log: one pure ASGI middleware, and the JSON log format.

The ingest path is the service's hot path, so per request this does only: read the
clock twice (``time.perf_counter``), find or make a request id, bump one cached counter
child (plus one histogram observation on the ingest route), and write one JSON line
made by one ``orjson.dumps``. No Starlette ``BaseHTTPMiddleware`` (it runs the app in a
task and copies the body through a stream), no ``logging`` call per request.

Routes are labelled by their template (``/pick-pack/{tenant}/events``), never the raw
path, so the metric's cardinality is bounded by the number of routes. The tenant in the
log line comes from the path. Headers are never logged: only the request id, which
comes from the ``X-Request-Id`` header when a client (or proxy) sent a sane one and is
echoed back on every response.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any, BinaryIO

import orjson
from rich.highlighter import NullHighlighter
from rich.markup import escape

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS_LOGGER = "pickpack.access"
# The status logged and counted for a request whose client went away before its answer
# (nginx's "client closed request"): the client received nothing (api/metrics.py).
ABANDONED = 499
UNMATCHED = "unmatched"  # the route label of a request no route matched (404)
_HEADER = b"x-request-id"
_MAX_ID = 128

# The current request's id, for log lines written while handling it (JsonFormatter).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def _usable(value: bytes) -> bool:
    """A client's request id is kept if short and printable ASCII (it is logged)."""
    return 0 < len(value) <= _MAX_ID and all(33 <= b < 127 for b in value)


class AccessLog:
    """Writes one JSON line per request to a binary stream (stdout by default), flushed."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream

    def write(self, line: bytes) -> None:
        stream = self._stream or sys.stdout.buffer
        stream.write(line)
        stream.flush()

    def request(
        self,
        rid: str,
        method: str,
        route: str,
        path: str,
        tenant: str | None,
        status: int,
        elapsed: float,
    ) -> None:
        self.write(
            orjson.dumps(
                {
                    "ts": time.time(),
                    "level": "info",
                    "logger": ACCESS_LOGGER,
                    "request_id": rid,
                    "method": method,
                    "route": route,
                    "path": path,
                    "tenant": tenant,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 3),
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )


class TextAccessLog(AccessLog):
    """One readable, coloured line per request through the ``pickpack.access`` logger.

    Used when `serve` writes for a person (a terminal, or ``--log-format text``): the
    logger's handler (a rich handler, api/console.py) adds the time and the colours.
    Costs a logging call per request, which a terminal can afford; JSON stays the fast path.
    """

    _COLOURS = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}

    def request(
        self,
        rid: str,
        method: str,
        route: str,
        path: str,
        tenant: str | None,
        status: int,
        elapsed: float,
    ) -> None:
        colour = self._COLOURS.get(status // 100, "white")
        # The method and path are the client's: escaped, so they cannot carry markup.
        # The request id last: the one a client saw in X-Request-Id, to find this line by
        # (docs/how-to/troubleshoot.md); a client's own id is escaped as the path is.
        _access.info(
            "%s %s [%s]%d[/] %.1f ms [dim]id[/] %s",
            escape(method),
            escape(path),
            colour,
            status,
            elapsed * 1000,
            escape(rid),
            extra={"markup": True, "highlighter": _PLAIN},
        )


_access = logging.getLogger(ACCESS_LOGGER)
_PLAIN = NullHighlighter()  # the status's own colour, not rich's colouring of numbers


class RequestObserver:
    """The ASGI middleware: request id, request metrics, one access-log line."""

    def __init__(self, app: ASGIApp, metrics: Any, access_log: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = b""
        for name, value in scope["headers"]:
            if name == _HEADER:
                rid = value
                break
        if not _usable(rid):
            rid = os.urandom(8).hex().encode()
        header = (_HEADER, rid)
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = ABANDONED if _client_gone(receive) else message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id_var.set(rid.decode())
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"]
            # The client was sent the HTTP guard's answer (a body past its deadline),
            # whatever the app answered into the closed connection (api/http_guard.py).
            status = scope.get("pickpack.refused", status)
            self.metrics.observe_request(template, method, status, elapsed)
            if self.access_log is not None:
                params = scope.get("path_params") or {}
                self.access_log.request(
                    rid.decode(),
                    method,
                    template,
                    scope["path"],
                    params.get("tenant"),
                    status,
                    elapsed,
                )


def _client_gone(receive: Receive) -> bool:
    """Whether the client has disconnected, asked without waiting.

    Once a request's body has been read, the server's `receive` returns
    ``http.disconnect`` at once if the client has gone, and otherwise waits for it. The
    coroutine is stepped once by hand: done at once means an answer is there; suspended
    means the client is still connected, and the coroutine is closed (its wait is
    withdrawn). No task is made, so it costs the ingest path next to nothing. A request
    whose body was not read yet (an early 4xx) gets its next body message, not a
    disconnect: it counts as answered, as before.
    """
    step = receive()
    try:
        step.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        message = done.value
        return isinstance(message, dict) and message.get("type") == "http.disconnect"
    except Exception:
        return False
    step.close()  # type: ignore[attr-defined]
    return False


def access_log_enabled() -> bool:
    """`serve` switches the request log with the ``pickpack.access`` logger's level."""
    return logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)


class JsonFormatter(logging.Formatter):
    """Every other log record as one JSON line: ts, level, logger, msg (+ request id)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid is not None:
            line["request_id"] = rid
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


LOG_FORMATS = ("json", "text")


def logging_config(
    level: str = "info", access_log: bool = True, fmt: str = "json"
) -> dict[str, Any]:
    """The dictConfig `serve` hands to uvicorn (and the other commands use): our request
    log only, and either JSON lines everywhere (``fmt="json"``: log collectors, pipes) or
    readable coloured lines (``fmt="text"``: a person at a terminal; api/console.py).

    uvicorn's own access log is off (`serve` passes access_log=False); ``pickpack.access``
    carries the level that switches our request log on or off, and in text form the
    handler that writes it (create_app picks TextAccessLog when that handler is there).
    The embedded database's wrapper (pgserver) narrates every start and stop at INFO,
    initdb's whole transcript included: it is heard at WARNING (a failed command, with its
    transcript) unless the level is debug.
    """
    lvl = level.upper()
    wrapper = lvl if lvl == "DEBUG" else "WARNING"
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: one of {', '.join(LOG_FORMATS)}")
    if fmt == "json":
        formatters: dict[str, Any] = {"json": {"()": "api.observability.JsonFormatter"}}
        handlers: dict[str, Any] = {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        }
        requests: list[str] = []
    else:
        formatters = {}
        handlers = {
            "stderr": {"()": "api.console.log_handler", "stream": "stderr"},
            "requests": {"()": "api.console.log_handler", "stream": "stdout"},
        }
        requests = ["requests"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": handlers,
        "root": {"handlers": ["stderr"], "level": lvl},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "pgserver": {"level": wrapper},
            ACCESS_LOGGER: {
                "handlers": requests,
                "level": lvl if access_log else "CRITICAL",
                "propagate": False,
            },
        },
    }


def default_access_log() -> AccessLog | None:
    """The request log the logging configuration asks for: none, text or JSON lines."""
    if not access_log_enabled():
        return None
    return TextAccessLog() if _access.handlers else AccessLog()
