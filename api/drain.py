"""Draining: the time between a stop request (SIGTERM) and the end of serving.

A load balancer learns that a replica is going away only from its health check, so a
stopping process first reports not ready (GET /ready answers 503) while it keeps
serving for a drain period (PICKPACK_DRAIN_SECONDS): the balancer takes it out of
rotation before its socket closes, and no scan meets a closed port. Responses written
during the drain carry `Connection: close`, so every keep-alive connection ends after
an answer, on the server's word, instead of being cut at shutdown while a request may
already be on the wire (which a client sees as a reset). docs/how-to/deploy.md says
how the drain, the balancer's checks and the stop timeout fit together.
"""

from __future__ import annotations

import time

from api.observability import ASGIApp, Message, Receive, Scope, Send


class Drain:
    """Whether this process is draining, and since when (one per process)."""

    def __init__(self) -> None:
        self._since: float | None = None

    def begin(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    @property
    def draining(self) -> bool:
        return self._since is not None

    def reset(self) -> None:
        """Serving again (a test that embeds the app several times in one process)."""
        self._since = None


# The process's drain: `pickpack serve` begins it on SIGTERM; the app reads it.
DRAIN = Drain()


class CloseWhileDraining:
    """Adds `Connection: close` to the responses of requests that arrive while the
    process drains. (A request that arrived just before keeps its connection open; the
    client's next request on it gets the header.) Outside a drain it costs one test."""

    def __init__(self, app: ASGIApp, drain: Drain = DRAIN) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.drain.draining:
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, closing)
