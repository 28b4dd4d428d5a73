"""A server-sent-event stream of GET /changes ends when its token no longer allows it:
at the token's expiry, and within the revocation list's lifetime after its OAuth client
was revoked, with a last event that says why (docs/reference/api.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from api.auth import MANAGE, VIEW
from cli import clients as clients_cli
from devtools.harness.service import Service, start_service, token
from ledger.adapters import client_store

CHANGES = "/pick-pack/demo/changes"


def events_until_closed(resp: httpx.Response, timeout: float) -> list[dict[str, str]]:
    """The stream's events (comments left out) until the server ends it."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for line in resp.iter_lines():
        assert time.monotonic() < deadline, f"still streaming after {timeout} s: {events}"
        if not line:
            if current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            current[key] = value.strip()
    return events


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Service]:
    server, thread, runtime, url = start_service(
        db_url, tmp_path, {"PICKPACK_REVOCATION_CACHE_SECONDS": "1"}, run_workers=False
    )
    with httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=20)) as client:
        yield Service(url, runtime, client)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.stop()


def stream(svc: Service, bearer: str) -> Any:
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "text/event-stream"}
    return svc.client.stream("GET", CHANGES, headers=headers)


def test_a_stream_ends_when_its_token_expires(svc: Service) -> None:
    short = token(ttl=2)
    started = time.monotonic()
    with stream(svc, short) as resp:
        assert resp.status_code == 200
        events = events_until_closed(resp, timeout=10)
    took = time.monotonic() - started
    assert events[-1] == {"event": "end", "data": '{"reason":"token expired"}'}, events
    assert took < 4, took
    # The same token on a plain request is refused, as the stream's end said.
    assert svc.client.get(CHANGES, headers={"Authorization": f"Bearer {short}"}).status_code == 401


def test_a_stream_ends_within_the_cache_lifetime_after_its_client_is_revoked(
    svc: Service, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        client_id, secret = clients_cli.add(conn, "demo", [VIEW, MANAGE], name="board")
    answer = svc.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": f"tenant=demo {VIEW}",
        },
    )
    assert answer.status_code == 200, answer.text
    bearer = answer.json()["access_token"]
    with stream(svc, bearer) as resp:
        assert resp.status_code == 200
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert client_store.revoke(conn, client_id)
        revoked_at = time.monotonic()
        events = events_until_closed(resp, timeout=10)
    assert time.monotonic() - revoked_at < 1.0 + 0.5  # the cache's lifetime, and a margin
    assert events[-1]["event"] == "end", events
    assert orjson.loads(events[-1]["data"]) == {"reason": "client revoked"}
