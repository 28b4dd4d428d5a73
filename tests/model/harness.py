"""The glue between the stateful test and the running service: the ONLY module of
tests/model that imports the service's packages (to start it, to rebuild its projections,
to restart its projection runner) and the fake Order Service.

When the service's modules move (the runtime is bootstrap.runtime, the fake Order
Service devtools.fake_order_service), re-point the imports here, nowhere else. The model
(reference.py, units.py) imports none of them, on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devtools.fake_order_service import FakeOrderService
from devtools.harness.service import auth, start_service

FAST = {
    "PICKPACK_ORDER_SERVICE_TOKEN": "os-token",
    "PICKPACK_RECALC_BACKOFF_SECONDS": "0.02",
    "PICKPACK_RECALC_MAX_BACKOFF_SECONDS": "0.1",
    "PICKPACK_RECALC_POLL_SECONDS": "0.01",
    "PICKPACK_RECALC_MAX_ATTEMPTS": "3",
    "PICKPACK_ORDER_SERVICE_TIMEOUT_SECONDS": "2",
}


@dataclass
class Running:
    """The service over HTTP, its database URL and the Order Service it calls."""

    client: httpx.Client
    db_url: str
    fake: FakeOrderService
    runtime: Any

    def headers(self, tenant: str) -> dict[str, str]:
        return auth(tenant)

    def calculations(self, tenant: str) -> list[tuple[str, Any]]:
        """(orderId, body) of every calculations request the Order Service received."""
        return [(str(r.order_id), r.body) for r in self.fake.calculations() if r.tenant == tenant]

    def rebuild_projections(self) -> None:
        """What `pickpack projections rebuild --all` does, in process (no CLI start-up)."""
        from projections.rebuild import rebuild
        from projections.registry import PROJECTIONS

        rebuild(self.db_url, list(PROJECTIONS.values()), chunk=50, flush_every=120)

    def restart_projection_runner(self) -> None:
        """Stop the live projection runner and start a new one: it resumes from the
        committed positions, as after a process restart."""
        from projections.runner import ProjectionRunner
        from projections.workers import start_projection_workers

        old = [w for w in self.runtime.workers if isinstance(w, ProjectionRunner)]
        for w in old:
            w.stop()
            self.runtime.workers.remove(w)
        for runner in start_projection_workers(self.runtime.database.url):
            self.runtime.committer.on_commit.append(runner.wake.set)
            self.runtime.workers.append(runner)


@contextmanager
def running_service(db_url: str, tmp_path: Path) -> Iterator[Running]:
    fake = FakeOrderService().start()
    env = {**FAST, "PICKPACK_ORDER_SERVICE_URL": fake.url}
    server, thread, runtime, url = start_service(db_url, tmp_path, env=env)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield Running(client, db_url, fake, runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
        fake.stop()
