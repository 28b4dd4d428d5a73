"""GET /health (the process answers) and GET /ready (it can serve: database and schema)."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request

from api.drain import DRAIN
from api.responses import JSONBody
from api.version import service_version
from ledger.adapters.migrate import pending

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Liveness, and the running version")
def health() -> dict[str, str]:
    return {"status": "ok", "version": service_version()}


@router.get("/ready", summary="Readiness: not stopping, database reachable and migrations applied")
def ready(request: Request) -> JSONBody:
    if DRAIN.draining:
        # Stopping (SIGTERM): still serving, but a load balancer should send no more.
        return JSONBody(
            {"status": "unavailable", "reason": "draining: the process is stopping"},
            status_code=503,
        )
    runtime = request.app.state.runtime
    body: dict[str, Any] = {"status": "ready", "database": "ok"}
    try:
        with psycopg.connect(runtime.database.url, connect_timeout=2) as conn:
            missing = pending(conn)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JSONBody(
            {"status": "unavailable", "database": "unreachable", "reason": reason},
            status_code=503,
        )
    if missing:
        body.update(status="unavailable", migrations={"pending": missing})
        return JSONBody(body, status_code=503)
    body["migrations"] = "applied"
    if not runtime.settings.order_service_url:
        body["recalculation"] = (
            "queued only: PICKPACK_ORDER_SERVICE_URL is not set, so recalculation "
            "requests wait as PENDING"
        )
    return JSONBody(body)
