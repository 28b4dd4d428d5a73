"""Every connection bounded in size and time before the app sees a byte of it.

uvicorn's httptools protocol, as `serve` runs it, bounds none of this: a request head
that never ends is accumulated without a cap, on the event loop (one such header took
every scan from 3-5 ms to seconds, and a 200 MB one grew the process by 330 MB); a
connection that sends nothing, or half a head, or a body one byte at a time, is held for
ever; and connections past the open-file limit make every accept fail. Its
`limit_concurrency` does not help: it refuses *requests* with a 503 once that many
connections are open, so a thousand idle sockets would refuse every scanner.

`GuardedHttpToolsProtocol` is that protocol with the bounds added where the bytes arrive
(docs/explanation/architecture.md says why here and not another server):

- **Head size**: at most `max_header_bytes` of request line and headers; the parser is
  never fed more. Past it: 431, and the connection is half-closed and no longer read
  until its head deadline, then closed (a lingering close: the answer is not destroyed
  by a reset, and a peer that floods and reconnects at once can cost the process one
  connection per head deadline, not one per 64 KiB).
- **Head deadline**: a head must be complete within `header_timeout` of the
  connection's start (or of the first byte of a keep-alive connection's next request).
  Past it: 408 if anything was sent, else the connection is just closed.
- **Body deadline**: a request's body must be complete within `body_timeout` of its
  head. Past it: 408, the connection is closed, and the app sees the client leave.
- **Connections**: at most `max_connections` open. A new one past the cap closes the
  one that has waited longest without sending a whole request head (a half-open or
  idle connection), else the longest-idle keep-alive connection; only when every
  connection is busy with a request is the newcomer answered 503 with Retry-After.
  So idle sockets cannot keep a scanner out, and the process never runs out of file
  descriptors (`serve` keeps the cap below the open-file limit).
- **Silent connections** (`defer_silent_connections`, Linux): a connection that has
  sent nothing stays in the kernel's queue until its first byte arrives or the head
  deadline passes, so the process neither accepts nor evicts it. Every HTTP client
  sends its request as soon as it is connected, so this costs an honest client nothing;
  a peer holding idle connections (and reopening each one the server closes) no longer
  costs an accept, a protocol and an eviction each time.

Each bound is per connection, by what the connection did, never per address: scanners
behind one NAT share an address with whatever else is on that network.

What the guard refused is counted in `/metrics` (pickpack_http_refused_total, by reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import resource
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("pickpack.http")

# Descriptors kept free beside the connections: the database pool, the LISTEN
# connection, the Order Service client, log files, the event loop's own.
RESERVED_FILES = 200

# Refusals by reason, for /metrics (api/metrics.py). Per process, like every metric.
REFUSED: Counter[str] = Counter()
REASONS = ("header_too_large", "header_timeout", "body_timeout", "evicted", "over_capacity")


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Any) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            max_connections=settings.max_connections,
        )

    def within_open_files(self) -> ConnectionLimits:
        """These limits with the connection cap below the process's open-file limit.

        The soft limit is raised to the hard one first (1,024 is a common soft limit,
        far below what a server may use); if the cap still does not fit with
        RESERVED_FILES to spare, it is lowered, and a warning names the setting.
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
            except (ValueError, OSError):
                pass
        if soft == resource.RLIM_INFINITY or self.max_connections + RESERVED_FILES <= soft:
            return self
        fitted = max(16, soft - RESERVED_FILES)
        log.warning(
            "PICKPACK_MAX_CONNECTIONS=%d does not fit the open-file limit of %d: "
            "at most %d connections are kept open (raise `ulimit -n` to allow more)",
            self.max_connections,
            soft,
            fitted,
        )
        return ConnectionLimits(
            self.max_header_bytes, self.header_timeout, self.body_timeout, fitted
        )


def defer_silent_connections(listeners: Iterable[Any], seconds: float) -> bool:
    """Ask the kernel to hand over a connection only once it has sent something, or
    after `seconds` (TCP_DEFER_ACCEPT, Linux; rounded up by the kernel to its next
    SYN-ACK retransmission). Returns whether every listener took the option; a
    listener that is not TCP (a Unix socket) or a system without it is left as it is."""
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None:
        return False
    deferred = True
    for listener in listeners:
        try:
            listener.setsockopt(socket.IPPROTO_TCP, option, max(1, math.ceil(seconds)))
        except OSError:
            deferred = False
    return deferred


def _answer(status: int, phrase: str, detail: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer in the service's error body, closing the connection."""
    body = orjson.dumps({"code": status, "message": phrase, "detailInfo": detail})
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n%s\r\n%s" % (status, phrase.encode(), len(body), extra, body)
    )


class _Waiting:
    """A server's connections that have no request in progress, oldest first, in the
    order they are closed to make room: those that never sent a whole head, those
    refused and lingering (already answered), and keep-alive connections between
    requests (most likely a scanner about to send its next one)."""

    def __init__(self) -> None:
        self.fresh: dict[GuardedHttpToolsProtocol, None] = {}
        self.lingering: dict[GuardedHttpToolsProtocol, None] = {}
        self.idle: dict[GuardedHttpToolsProtocol, None] = {}

    def victim(self, newcomer: GuardedHttpToolsProtocol) -> GuardedHttpToolsProtocol | None:
        for group in (self.fresh, self.lingering, self.idle):
            for candidate in group:
                if candidate is not newcomer:
                    return candidate
        return None

    def discard(self, protocol: GuardedHttpToolsProtocol) -> None:
        self.fresh.pop(protocol, None)
        self.lingering.pop(protocol, None)
        self.idle.pop(protocol, None)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded heads, deadlines and a connection cap."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or ConnectionLimits()
        waiting = getattr(server_state, "pickpack_waiting", None)
        if waiting is None:
            waiting = _Waiting()
            server_state.pickpack_waiting = waiting
        self._waiting: _Waiting = waiting
        self._reading_head = True
        self._head_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    # -- the connection's life ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            victim = self._waiting.victim(self)
            if victim is None:
                self._refuse(
                    "over_capacity",
                    503,
                    "Service Unavailable",
                    f"connections: more than {self.limits.max_connections} open; retry shortly",
                    b"retry-after: 1\r\n",
                )
                return
            # A lingering victim was counted when it was refused.
            victim._close(None if victim in self._waiting.lingering else "evicted")
        self._waiting.fresh[self] = None
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting.discard(self)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._reading_head:
            super().data_received(data)
            return
        if self._timer is None:  # a keep-alive connection's next request begins
            self._waiting.idle.pop(self, None)
            self._arm(self.limits.header_timeout, self._head_timed_out)
        room = self.limits.max_header_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed only what the bound allows; if the head ends within it, go on with the
        # rest (a body, or a pipelined request); if not, the head is too large.
        self._head_bytes += room
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._reading_head:
            self._refuse_and_linger(
                "header_too_large",
                431,
                "Request Header Fields Too Large",
                f"headers: larger than {self.limits.max_header_bytes} bytes",
            )
            return
        self.data_received(data[room:])

    # -- parser callbacks -----------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._waiting.discard(self)
        if self.parser.should_upgrade():
            self._disarm()  # another protocol takes the connection over
        else:
            self._arm(self.limits.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._reading_head and self._timer is None:
            self._waiting.idle[self] = None  # kept alive, between requests

    # -- refusing -------------------------------------------------------------------------

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._head_bytes == 0:
            self._close("header_timeout")
            return
        self._refuse(
            "header_timeout",
            408,
            "Request Timeout",
            f"headers: not complete within {self.limits.header_timeout:g} s",
        )

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        detail = f"body: not complete within {self.limits.body_timeout:g} s"
        if cycle is not None and not cycle.response_started:
            # The app is still waiting for the body: it sees the client leave, and the
            # request observer counts the 408 that the client was sent.
            cycle.scope["pickpack.refused"] = 408  # type: ignore[typeddict-unknown-key]
            cycle.disconnected = True
            cycle.message_event.set()
            self._refuse("body_timeout", 408, "Request Timeout", detail)
        else:
            self._close("body_timeout")

    def _refuse(
        self, reason: str, status: int, phrase: str, detail: str, extra: bytes = b""
    ) -> None:
        if not self.transport.is_closing():
            self.transport.write(_answer(status, phrase, detail, extra))
        self._close(reason)

    def _refuse_and_linger(self, reason: str, status: int, phrase: str, detail: str) -> None:
        """Answer, half-close, read no more, and close at the head deadline.

        Closing at once would reset the connection (unread bytes are waiting), which may
        destroy the answer before the client reads it; and a flooding peer, closed at
        once, reconnects at once: each round costs the process an accept, a protocol and
        a head's worth of parsing. Held without reading, it costs a descriptor and no
        CPU; a client that reads its answer closes its side. Lingering connections are
        among the first closed to make room."""
        REFUSED[reason] += 1
        self._waiting.discard(self)
        self.transport.write(_answer(status, phrase, detail))
        with contextlib.suppress(OSError, RuntimeError, NotImplementedError):
            self.transport.write_eof()
        self.transport.pause_reading()
        self._waiting.lingering[self] = None
        self._arm(self.limits.header_timeout, lambda: self._close(None))

    def _close(self, reason: str | None) -> None:
        if reason is not None:
            REFUSED[reason] += 1
        self._waiting.discard(self)
        self._disarm()
        if self.flow is not None:
            self.flow.resume_reading()
        self.transport.close()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
