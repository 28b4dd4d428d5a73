"""Per-request cost of the request observer (metrics + request log), in process, CPU only.

    python bench/middleware.py [--requests 200000]

Calls a trivial ASGI app (answers 200 at once) N times on one event loop: bare, wrapped
in api.observability.RequestObserver without and with the request log (to /dev/null),
and, for comparison, wrapped in a Starlette BaseHTTPMiddleware that does nothing. Prints
microseconds per request for each and the observer's added cost. No network, no
database: this isolates the middleware from everything the ingest benchmark measures.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.metrics import Metrics
from api.observability import AccessLog, RequestObserver

ROUTE = Route("/pick-pack/{tenant}/events", lambda r: Response(), methods=["POST"])


async def trivial(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = ROUTE  # what the router sets on a match
    scope["path_params"] = {"tenant": "demo"}
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/pick-pack/demo/events",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", b"Bearer x"),
            (b"saas-token", b"s"),
            (b"content-type", b"application/json"),
            (b"content-length", b"300"),
        ],
        "query_string": b"",
    }


async def run(app: Callable[..., Awaitable[None]], n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    for _ in range(1000):  # warm up
        await app(scope(), receive, send)
    started = time.perf_counter()
    for _ in range(n):
        await app(scope(), receive, send)
    return (time.perf_counter() - started) / n * 1e6


class Nothing(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Any:
        return await call_next(request)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    n = parser.parse_args().requests
    metrics = Metrics(lambda: None)
    with open("/dev/null", "wb") as devnull:
        variants: dict[str, Any] = {
            "bare app": trivial,
            "observer, no request log": RequestObserver(trivial, metrics, None),
            "observer + request log": RequestObserver(trivial, metrics, AccessLog(devnull)),
            "BaseHTTPMiddleware doing nothing": Nothing(trivial),
        }
        results = {name: asyncio.run(run(app, n)) for name, app in variants.items()}
    bare = results["bare app"]
    for name, us in results.items():
        print(f"{name:<36} {us:7.2f} us/request  (+{us - bare:.2f} us)")


if __name__ == "__main__":
    main()
