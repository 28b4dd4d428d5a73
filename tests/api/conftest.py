"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.service import start_service
from tests.helpers.jwks import JwksServer


@pytest.fixture
def jwks_service(db_url: str, tmp_path: Path) -> Iterator[tuple[str, JwksServer]]:
    """The service checking tokens against an identity provider's JWKS (no shared
    secret): its URL and the provider."""
    jwks = JwksServer()
    server, thread, runtime, url = start_service(
        db_url,
        tmp_path,
        env={"PICKPACK_JWT_SECRET": "", "PICKPACK_JWKS_URL": jwks.url},
        run_workers=False,
    )
    yield url, jwks
    server.should_exit = True
    thread.join(timeout=10)
    runtime.stop()
    jwks.server.shutdown()
