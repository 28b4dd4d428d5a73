"""The ingest fast path answers every request exactly as the declared endpoint does.

Two services, each over its own fresh database: one built as `serve` builds it (valid
requests take api/fast_ingest.py's fast path), one that never takes it and only runs
the declared FastAPI endpoint. The same requests, in the same order, go to both: every
answer (status, body, content type) and then the whole stored feed must be equal. The
requests cover the valid case and each way a scanner's request can be wrong, including
those where the order of the checks shows (a bad body with a bad token).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import api.fast_ingest
from api.auth import MANAGE, VIEW
from api.body_limit import MAX_BODY_BYTES
from devtools.harness.pg import DatabaseFactory
from devtools.harness.service import EXAMPLE_EVENT, start_service, token
from ledger.domain.inputs import SAAS_TOKEN_MAX_LENGTH

PATH = "/pick-pack/demo/events"


def event(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_EVENT, **changes}


def headers(**changes: str | None) -> dict[str, str]:
    base: dict[str, str | None] = {
        "Authorization": f"Bearer {token('demo')}",
        "saas-token": "saas-1",
        "Content-Type": "application/json",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def js(body: Any) -> bytes:
    return json.dumps(body).encode()


# (what it is, path, headers, raw body)
# fmt: off
REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("valid", PATH, headers(), js(event(eventId="a1"))),
    ("same again", PATH, headers(), js(event(eventId="a1"))),
    ("same id, other content", PATH, headers(), js(event(eventId="a1", packedAmount=9))),
    ("all fields", PATH, headers(), js(event(eventId="a2", deliveryCycle="c1", supplierId="s",
                                            pickedAmount=2, canceledAmount=1, bookProduct=True))),
    ("unknown field ignored", PATH, headers(), js(event(eventId="a3", newField={"x": 1}))),
    ("charset parameter", PATH, headers(**{"Content-Type": "application/json; charset=utf-8"}),
     js(event(eventId="a4"))),
    ("upper-case type", PATH, headers(**{"Content-Type": "Application/JSON"}),
     js(event(eventId="a5"))),
    ("vendor json type", PATH, headers(**{"Content-Type": "application/vnd.x+json"}),
     js(event(eventId="a6"))),
    ("offset timestamp", PATH, headers(), js(event(eventId="a7",
                                                   timestamp="2024-05-01T12:00:00+02:00"))),
    ("utf-8 bom", PATH, headers(), b"\xef\xbb\xbf" + js(event(eventId="a8"))),
    ("utf-16 body", PATH, headers(), json.dumps(event(eventId="a9")).encode("utf-16")),
    ("duplicate key", PATH, headers(), b'{"eventId": "x", ' + js(event(eventId="a10"))[1:]),
    ("no saas-token", PATH, headers(**{"saas-token": None}), js(event(eventId="b1"))),
    ("bad saas-token", PATH, headers(**{"saas-token": "a b"}), js(event(eventId="b2"))),
    ("long saas-token", PATH, headers(**{"saas-token": "x" * (SAAS_TOKEN_MAX_LENGTH + 1)}),
     js(event(eventId="b3"))),
    ("no token", PATH, headers(Authorization=None), js(event(eventId="b4"))),
    ("garbage token", PATH, headers(Authorization="Bearer nope"), js(event(eventId="b5"))),
    ("expired token", PATH, headers(Authorization=f"Bearer {token('demo', ttl=-10)}"),
     js(event(eventId="b6"))),
    ("view scope only", PATH, headers(Authorization=f"Bearer {token('demo', [VIEW])}"),
     js(event(eventId="b7"))),
    ("other tenant's token", PATH, headers(Authorization=f"Bearer {token('other', [MANAGE])}"),
     js(event(eventId="b8"))),
    ("bad tenant in path", "/pick-pack/A/events", headers(), js(event(eventId="b9"))),
    ("bad tenant, token for it", "/pick-pack/A/events",
     headers(Authorization=f"Bearer {token('A')}"), js(event(eventId="b10"))),
    ("over the body limit", PATH, headers(),
     js(event(eventId="b11", padding="x" * (MAX_BODY_BYTES + 1)))),
    ("bad json", PATH, headers(), b'{"eventId": '),
    ("bad json, no token", PATH, headers(Authorization=None), b'{"eventId": '),
    ("not utf-8", PATH, headers(), b'{"eventId": "\xff\xfe"}'),
    ("empty body", PATH, headers(), b""),
    ("json array", PATH, headers(), js([event(eventId="c1")])),
    ("json null", PATH, headers(), b"null"),
    ("json string", PATH, headers(), b'"x"'),
    ("text/plain", PATH, headers(**{"Content-Type": "text/plain"}), js(event(eventId="c2"))),
    ("no content type", PATH, headers(**{"Content-Type": None}), js(event(eventId="c3"))),
    ("missing fields", PATH, headers(), js({"eventId": "c4"})),
    ("amount as text", PATH, headers(), js(event(eventId="c5", packedAmount="1"))),
    ("amount as float", PATH, headers(), js(event(eventId="c6", packedAmount=1.0))),
    ("negative amount", PATH, headers(), js(event(eventId="c7", packedAmount=-1))),
    ("huge amount", PATH, headers(), js(event(eventId="c8", packedAmount=10**30))),
    ("NaN amount", PATH, headers(), js(event(eventId="c9"))[:-1] + b',"pickedAmount":NaN}'),
    ("bad timestamp", PATH, headers(), js(event(eventId="c10", timestamp="yesterday"))),
    ("bad id", PATH, headers(), js(event(eventId="a b"))),
    ("bool as int", PATH, headers(), js(event(eventId="c11", bookProduct=1))),
    ("lone surrogate", PATH, headers(), js(event())[:-1] + b', "eventId": "\\ud800"}'),
]
# fmt: on


@pytest.fixture
def both(databases: DatabaseFactory, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(fast service URL, declared-only service URL), each over its own database."""
    started = []
    for fast in (True, False):
        url = databases.migrated()

        def configure(app: FastAPI, fast: bool = fast) -> None:
            app.state.fast_ingest = fast

        started.append((start_service(url, tmp_path / str(fast), configure=configure), url))
    yield started[0][0][3], started[1][0][3]
    for (server, thread, runtime, _), url in started:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
        databases.drop(url)


def answer(client: httpx.Client, path: str, hdrs: dict[str, str], body: bytes) -> tuple[Any, ...]:
    r = client.post(path, headers=hdrs, content=body)
    return r.status_code, r.headers.get("content-type"), r.content


def test_every_request_is_answered_as_the_declared_endpoint_answers_it(
    both: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_url, declared_url = both
    taken = []
    record = api.fast_ingest.record_packing_event

    async def counting(*args: Any) -> Any:
        taken.append(args[1].event_id)
        return await record(*args)

    # Only the fast path calls it through this module's name; the declared endpoint
    # imported its own reference.
    monkeypatch.setattr(api.fast_ingest, "record_packing_event", counting)
    with httpx.Client(base_url=fast_url) as fast, httpx.Client(base_url=declared_url) as slow:
        for what, path, hdrs, body in REQUESTS:
            assert answer(fast, path, hdrs, body) == answer(slow, path, hdrs, body), what
        feed_headers = {"Authorization": f"Bearer {token('demo')}"}
        fast_feed = fast.get(PATH, headers=feed_headers).json()
        assert fast_feed == slow.get(PATH, headers=feed_headers).json()
    # The fast path did take the valid requests (else this compared the endpoint with
    # itself), and nothing else was recorded.
    assert {"a1", "a2", "a3", "a4", "a5", "a7"} <= set(taken)
    assert sorted(e["eventId"] for e in fast_feed) == sorted(
        ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10"]
    )
