"""The FastAPI application: routes, error bodies, metrics, and the runtime's lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from api import board_page, docs_pages, errors
from api.auth import TokenVerifier, make_verifier
from api.body_limit import BodyLimitMiddleware
from api.drain import CloseWhileDraining
from api.fast_ingest import FastIngest
from api.health import router as health_router
from api.metrics import Metrics
from api.metrics import router as metrics_router
from api.observability import AccessLog, RequestObserver, default_access_log
from api.routes_events import router as events_router
from api.routes_oauth import router as oauth_router
from api.routes_orders import router as orders_router
from api.routes_recalculation import router as recalculation_router
from api.routes_story import router as story_router
from api.version import service_version
from bootstrap.runtime import Runtime

# FastAPI's native OpenTelemetry, off: the service reports through its own metrics and log.
NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class PickpackApp(FastAPI):
    """FastAPI with the request observer outside every other layer, then the fast path.

    Outermost, so it also sees (and stamps X-Request-Id on) the 500 that Starlette's
    ServerErrorMiddleware answers for an unhandled exception; `add_middleware` would
    place it inside that layer. Valid scans are answered just inside it
    (api/fast_ingest.py); everything else goes on through FastAPI.
    """

    access_log: AccessLog | None = None

    def build_middleware_stack(self) -> Any:
        # While the process drains, every answer closes its connection (api/drain.py).
        return CloseWhileDraining(
            RequestObserver(
                FastIngest(super().build_middleware_stack(), self.state),
                self.state.metrics,
                self.access_log,
            )
        )


def create_app(runtime: Runtime | None = None, access_log: AccessLog | None = None) -> FastAPI:
    """An app bound to `runtime`, or one that starts its own from the environment.

    Requests are logged to `access_log`; without one, to stdout when the
    ``pickpack.access`` logger is enabled for INFO (`serve` sets it; tests leave it off),
    as JSON lines or, when that logger has a handler (text logs), readable lines.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or Runtime.start()
        app.state.verifier = _verifier(app.state.runtime)
        # Everything built so far lives as long as the process: move it out of the
        # collector's sight, and collect less often. Measured on the ingest path, where
        # each request allocates many short-lived objects and few cycles.
        if owned:  # a process of its own (`serve`), not a test embedding the app
            gc.freeze()
            gc.set_threshold(20_000, 50, 100)
        try:
            yield
        finally:
            if owned:
                app.state.runtime.stop()

    app = PickpackApp(
        title="Pick-Pack Service (pickpack-ledger)",
        description="Manage the picking and packing process in-store or in a warehouse. "
        "An event-sourced, drop-in replacement for the Emporix Pick-Pack Service.",
        version=service_version(),
        lifespan=lifespan,
        # FastAPI's pages would load Swagger UI and ReDoc from a CDN: ours serve their
        # files from the package (api/docs_pages.py).
        docs_url=None,
        redoc_url=None,
        # The service exports its own metrics and request log (/metrics,
        # docs/reference/metrics-and-logs.md).
        # FastAPI's OpenTelemetry bridge would add nothing without a configured provider,
        # yet it looks the global providers up on every request, ~5% of the event loop's
        # samples on POST /events (py-spy during bench/ingest.py).
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    if runtime is not None:
        app.state.runtime = runtime
        app.state.verifier = _verifier(runtime)
    app.state.fast_ingest = True  # valid scans skip FastAPI's layers (api/fast_ingest.py)
    app.state.metrics = Metrics(lambda: getattr(app.state, "runtime", None))
    app.access_log = access_log or default_access_log()
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware)  # bodies over 1 MiB: 413 (api/body_limit.py)
    # The scanners' route first: routes are matched in order, one regex each.
    app.include_router(events_router)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(orders_router)
    app.include_router(recalculation_router)
    app.include_router(story_router)
    app.include_router(oauth_router)  # POST /oauth/token, /.well-known/jwks.json
    docs_pages.install(app)
    board_page.install(app)  # GET /board, the live packing board (api/board_page.py)
    return app


def _verifier(runtime: Runtime) -> TokenVerifier:
    # The runtime holds the service's signing key and the revoked clients' list, so
    # tokens issued by POST /oauth/token are checked against both.
    return make_verifier(runtime.settings, runtime.signer, runtime.revocations)
