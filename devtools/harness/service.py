"""The service on a real port for tests and benches: tokens, a running app, an example scan.

Shared by tests/conftest.py's fixtures and by bench/fuzz.py, so it lives here rather than
in a conftest.py (a bench may not import test modules).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.observability import AccessLog
from bootstrap.runtime import Runtime
from ledger.adapters.database import Database
from ledger.config import Settings
from ledger.services.signing import MANAGE, VIEW, mint_token

SECRET = "test-secret-0123456789-0123456789-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(
    tenant: str = "demo",
    scopes: list[str] | None = None,
    sub: str = "user-1",
    ttl: int = 3600,
    secret: str = SECRET,
) -> str:
    return mint_token(
        secret,
        tenant,
        scopes if scopes is not None else [VIEW, MANAGE],
        subject=sub,
        ttl_seconds=ttl,
    )


def auth(tenant: str = "demo", **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, **kw)}", "saas-token": "saas-1"}


@dataclass
class Service:
    """The service, running on uvicorn on a real port, over a test database."""

    url: str
    runtime: Runtime
    client: httpx.Client

    def post_event(self, body: dict[str, Any], tenant: str = "demo", **kw: Any) -> httpx.Response:
        return self.client.post(
            f"/pick-pack/{tenant}/events", json=body, headers=auth(tenant, **kw)
        )

    def events(self, tenant: str = "demo", **params: Any) -> httpx.Response:
        return self.client.get(f"/pick-pack/{tenant}/events", params=params, headers=auth(tenant))


def start_service(
    db_url: str,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    run_workers: bool = True,
    access_log: AccessLog | None = None,
    configure: Callable[[FastAPI], None] | None = None,
) -> tuple[uvicorn.Server, threading.Thread, Runtime, str]:
    """The app on uvicorn in a thread; `access_log` receives its request log lines and
    `configure` may add routes before it serves."""
    settings = Settings.from_env(
        {
            "PICKPACK_DATABASE_URL": db_url,
            "PICKPACK_DATA_DIR": str(tmp_path / "data"),
            "PICKPACK_JWT_SECRET": SECRET,
            **(env or {}),
        }
    )
    runtime = Runtime.start(settings, Database(url=db_url), run_workers=run_workers)
    port = free_port()
    app = create_app(runtime, access_log=access_log)
    if configure is not None:
        configure(app)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("service did not start")
        time.sleep(0.01)
    return server, thread, runtime, f"http://127.0.0.1:{port}"


EXAMPLE_EVENT: dict[str, Any] = {
    "eventId": "123",
    "orderNumber": "123",
    "productId": "123",
    "deliveryCycle": "2023-10-13-11-test",
    "pickedAmount": 1,
    "packedAmount": 1,
    "canceledAmount": 0,
    "supplierId": "123",
    "unit": "H87",
    "timestamp": "2020-09-14T13:35:18.333Z",
    "site": "main",
    "bookProduct": True,
}


@contextmanager
def running(db_url: str, tmp_path: Path, env: dict[str, str]) -> Iterator[Service]:
    server, thread, runtime, url = start_service(db_url, tmp_path, env=env)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield Service(url, runtime, client)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
