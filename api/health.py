"""GET /health (the process answers) and GET /ready (it can serve: database and schema)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.drain import DRAIN
from api.responses import JSONBody
from api.version import service_version
from ledger.adapters.migrate import pending
from ledger.adapters.pool import UNAVAILABLE_ERRORS

# The bound on each of /ready's round trips: a load balancer's check must get its answer
# well within its own timeout.
READY_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Liveness, and the running version")
def health() -> dict[str, str]:
    return {"status": "ok", "version": service_version()}


@router.get("/ready", summary="Readiness: not stopping, database writable and migrations applied")
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
        missing = check_write_path(runtime)
    except UNAVAILABLE_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return JSONBody(
            {"status": "unavailable", "database": "unreachable", "reason": reason},
            status_code=503,
        )
    except ReadOnly as exc:
        return JSONBody(
            {"status": "unavailable", "database": "read-only", "reason": str(exc)},
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


class ReadOnly(Exception):
    """The server the service's pool reaches takes no writes (a standby)."""


def check_write_path(runtime: Any) -> list[str]:
    """What a scan needs, tried the way a scan goes: on a connection of the service's own
    pool (not a fresh one, which could reach another server than the pooled ones), within
    READY_TIMEOUT_SECONDS per round trip. The server must be a primary, and a transaction
    that takes a transaction id must commit: with synchronous replication its COMMIT
    waits for the synchronous standby, as a scan's does. Returns the pending migrations.
    """
    with runtime.store.connection() as conn:
        conn.round_trip_timeout = READY_TIMEOUT_SECONDS
        try:
            (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone().values()
            if in_recovery:
                raise ReadOnly("the database server is a standby (in recovery)")
            conn.execute("SELECT pg_current_xact_id()")  # autocommit: its own COMMIT
            return pending(conn)
        finally:
            conn.round_trip_timeout = None
