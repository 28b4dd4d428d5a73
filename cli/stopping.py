"""How `pickpack serve` stops: a drain on SIGTERM, at once on a second signal.

uvicorn stops on the first SIGTERM or SIGINT: it closes its listening socket, closes
idle keep-alive connections, waits for the requests in flight, then runs the app's
shutdown (the group commit flushes, workers stop). Two things are missing for a fleet
behind a load balancer, and this server adds them:

- SIGTERM first begins a drain (api/drain.py): GET /ready answers 503 at once and
  every answer closes its connection, while the process keeps serving for
  PICKPACK_DRAIN_SECONDS; only then does uvicorn's orderly stop begin. SIGINT (Ctrl+C
  at a terminal) skips the drain: nobody balances a terminal.
- A second SIGTERM or SIGINT stops at once: no more waiting for the drain or for
  requests in flight. Nothing acknowledged is lost that way either: a scan is answered
  200 only after its commit (docs/explanation/guarantees.md), and a request cut off
  unanswered is retried by its scanner with the same eventId.

A signal that repeats within `SAME_STOP_SECONDS` of the first is taken as the same
stop request: a service manager that signals the whole process group (systemd's
default) reaches the worker processes of `serve --workers N` both directly and
through uvicorn's supervisor.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import time
from types import FrameType

import uvicorn
from uvicorn.supervisors import multiprocess

from api.drain import DRAIN, Drain
from api.http_guard import defer_silent_connections

log = logging.getLogger("pickpack.serve")

SAME_STOP_SECONDS = 1.0
# What `serve` gives requests in flight once the drain is over (uvicorn's
# timeout_graceful_shutdown); docs/reference/cli.md states the whole bound.
IN_FLIGHT_SECONDS = 10


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with the drain and the second signal described above."""

    def __init__(
        self,
        config: uvicorn.Config,
        drain_seconds: float,
        drain: Drain = DRAIN,
        defer_silent_seconds: float = 0.0,
    ):
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain = drain
        self.defer_silent_seconds = defer_silent_seconds
        self._first_signal: float | None = None
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self._first_signal is not None:
            if now - self._first_signal < SAME_STOP_SECONDS:
                return  # the same stop request, delivered twice
            log.warning("second stop signal: stopping now, without waiting")
            self.force_exit = True
            self.should_exit = True
            return
        self._first_signal = now
        self._captured_signals.append(sig)  # re-raised once stopped (serve exits 0)
        if sig == signal.SIGTERM and self.drain_seconds > 0:
            self.drain.begin()
            self._drain_until = now + self.drain_seconds
            log.info(
                "SIGTERM: not ready (GET /ready answers 503); serving %.1f s more, then "
                "stopping (a second signal stops at once)",
                self.drain_seconds,
            )
            return
        self.drain.begin()  # /ready says so during the orderly stop too
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.defer_silent_seconds > 0 and not self.should_exit:
            # A connection that sends nothing waits in the kernel, not in the process
            # (api/http_guard.py): the listening sockets are ours once uvicorn made them.
            servers = getattr(self, "servers", [])
            listeners = [sock for server in servers for sock in server.sockets or ()]
            defer_silent_connections(listeners, self.defer_silent_seconds)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            log.info("drain over: no new connections; finishing the requests in flight")
            self._drain_until = None
            self.should_exit = True
        return await super().on_tick(counter)


class DrainingProcess(multiprocess.Process):
    """A worker of `serve --workers N`: its server drains like a single process's."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            from ledger.config import Settings

            settings = Settings.from_env()
            self._server = DrainingServer(
                self.config,
                settings.drain_seconds,
                defer_silent_seconds=settings.header_timeout_seconds,
            )
        return self._server


def run_workers(config: uvicorn.Config) -> None:
    """uvicorn's supervisor over `config.workers` processes that drain on SIGTERM.

    The supervisor forwards SIGTERM to each worker and waits for them. It builds its
    workers from the module's `Process` (spawned: the child unpickles this subclass from
    this module), so that name is pointed at DrainingProcess in this process only.
    """
    multiprocess.Process = DrainingProcess  # type: ignore[misc]
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
        multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
