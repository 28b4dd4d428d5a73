"""Request bodies over 1 MiB answer 413, without being read into memory.

A pure ASGI middleware. A declared Content-Length over the limit is refused before the
app runs. A body without one (chunked) is counted as it arrives; the chunk that
crosses the limit aborts the request: whatever the app was about to answer (its body
parser turns the abort into a 400, or an exception into a 500) is dropped and a 413 is
sent instead, if no response has started. The largest legitimate bodies (an Order
document, a packaging list) are a few kB, so 1 MiB leaves a wide margin.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024


class _TooLarge(Exception):
    """Raised from receive() when the body crosses the limit."""


def _refusal(limit: int) -> tuple[Message, Message]:
    body = orjson.dumps(
        {
            "code": 413,
            "message": "Payload Too Large",
            "detailInfo": f"body: larger than {limit} bytes",
        }
    )
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break
                if declared > self.max_bytes:
                    for message in _refusal(self.max_bytes):
                        await send(message)
                    return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to an aborted body: replaced by the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            for message in _refusal(self.max_bytes):
                await send(message)
