"""GET /changes: every fact of a tenant by position, long-poll, SSE; `pickpack events export`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from devtools.harness.service import EXAMPLE_EVENT, Service, auth
from devtools.harness.support import wait_until
from tests.helpers.pack_station import ASSIGNEE_A, Api, order

CHANGES = "/pick-pack/{tenant}/changes"


def changes(service: Service, tenant: str = "demo", **params: Any) -> dict[str, Any]:
    resp = service.client.get(CHANGES.format(tenant=tenant), params=params, headers=auth(tenant))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def follow(service: Service, after: int = 0, limit: int = 100, tenant: str = "demo") -> list[Any]:
    """Everything after `after`, following `next` until a page is empty."""
    items: list[Any] = []
    while True:
        page = changes(service, tenant, after=after, limit=limit)
        if not page["items"]:
            assert page["next"] == after
            return items
        assert page["next"] == page["items"][-1]["position"]
        items += page["items"]
        after = page["next"]


def scan(service: Service, event_id: str, order_id: str = "o1", **kw: Any) -> None:
    resp = service.post_event({**EXAMPLE_EVENT, "eventId": event_id, "orderNumber": order_id, **kw})
    assert resp.status_code == 200, resp.text


def test_every_fact_of_the_tenant_once_in_commit_order(service: Service) -> None:
    api = Api(service)
    api.register("o1", order("o1"))
    scan(service, "e1", productId="p1", packedAmount=1)
    assert api.assign("o1", ASSIGNEE_A).status_code == 200
    assert api.unassign("o1", "a-1").status_code == 204
    assert api.packaging("o1", [{"entryId": "box", "packedCount": 1}]).status_code == 200
    assert api.patch("o1", "PACKED").status_code == 200
    assert api.patch("o1", "CANCELLED").status_code == 200

    items = follow(service, limit=2)  # pages of two: each fact exactly once across pages
    assert [i["type"] for i in items] == [
        "OrderRegistered",
        "PackingEventRecorded",
        "AssigneeAdded",
        "AssigneeRemoved",
        "PackagingChanged",
        "PackingStatusChanged",
        "HoldingAreaAssigned",
        "OrderCancelled",
    ]
    positions = [i["position"] for i in items]
    assert positions == sorted(set(positions))
    assert all(i["orderId"] == "o1" and i["recordedAt"].endswith("Z") for i in items)
    assert items[0]["data"]["order"]["id"] == "o1"
    assert items[1]["data"]["eventId"] == "e1" and items[1]["data"]["packedAmount"] == 1
    assert items[2]["data"]["assignee"]["id"] == "a-1"
    assert items[5]["data"] == {"packingStatus": "PACKED"}
    assert "saas" not in orjson.dumps(items).decode().lower()  # the saas-token never shows
    # An unbounded page reads the same; `next` stays put when nothing is new.
    whole = changes(service)
    assert whole["items"] == items and whole["next"] == positions[-1]
    assert changes(service, after=positions[-1]) == {"items": [], "next": positions[-1]}


def test_a_late_scan_is_seen_by_the_feed_and_missed_by_a_timestamp_poller(
    service: Service,
) -> None:
    scan(service, "e-new", timestamp="2024-05-01T10:00:00.000Z")
    # A GET /events poller remembers the newest timestamp it saw ...
    seen = service.events(timestamp="2000-01-01T00:00:00Z").json()
    newest = max(e["timestamp"] for e in seen)
    cursor = changes(service)["next"]  # ... a feed consumer remembers `next`.
    # A scanner that was offline delivers a scan made earlier.
    scan(service, "e-late", timestamp="2024-05-01T09:00:00.000Z")
    assert service.events(timestamp=newest).json() == []  # the poller never sees it
    late = follow(service, after=cursor)
    assert [i["data"]["eventId"] for i in late] == ["e-late"]


def test_long_poll_is_answered_within_200ms_of_a_commit(service: Service) -> None:
    head = changes(service)["next"]
    # Nothing commits: an empty answer after the wait, `next` unchanged.
    started = time.monotonic()
    assert changes(service, after=head, wait=0.5) == {"items": [], "next": head}
    assert time.monotonic() - started >= 0.5

    for commit in (
        lambda: scan(service, "e1"),  # the group-commit writer's commit
        lambda: Api(service).register("o2", order("o2")),  # an order command
    ):
        answered: dict[str, Any] = {}

        def poll(answered: dict[str, Any], after: int) -> None:
            answered["page"] = changes(service, after=after, wait=10)
            answered["at"] = time.monotonic()

        waiter = threading.Thread(target=poll, args=(answered, head))
        waiter.start()
        time.sleep(0.5)  # the poll is waiting
        assert "page" not in answered
        commit()
        committed = time.monotonic()  # the 200 comes after the commit
        waiter.join(timeout=10)
        assert len(answered["page"]["items"]) == 1
        assert answered["at"] - committed < 0.2, answered["at"] - committed
        head = answered["page"]["next"]


def sse_items(lines: Iterator[str], count: int) -> list[tuple[int, dict[str, Any]]]:
    """The next `count` events of a stream's lines: (id, data)."""
    out: list[tuple[int, dict[str, Any]]] = []
    event: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in event:
                out.append((int(event["id"]), orjson.loads(event["data"])))
                if len(out) == count:
                    return out
            event = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            event[key] = value.strip()
    raise AssertionError("stream ended")


def test_sse_streams_live_and_resumes_after_last_event_id(service: Service) -> None:
    for n in range(3):
        scan(service, f"e{n}")
    headers = {**auth(), "Accept": "text/event-stream"}
    url = CHANGES.format(tenant="demo")
    with service.client.stream("GET", url, headers=headers) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        first = sse_items(resp.iter_lines(), 2)
    # Facts commit while the client is away; it resumes after the last id it got.
    scan(service, "e3")
    scan(service, "e4")
    last_id = first[-1][0]
    with service.client.stream(
        "GET", url, headers={**headers, "Last-Event-ID": str(last_id)}
    ) as resp:
        lines = resp.iter_lines()
        resumed = sse_items(lines, 3)
        threading.Timer(0.3, scan, (service, "e5")).start()  # and one while it listens
        resumed += sse_items(lines, 1)
    got = [data["data"]["eventId"] for _, data in first + resumed]
    assert got == ["e0", "e1", "e2", "e3", "e4", "e5"]  # no gap, no duplicate
    assert [i for i, _ in first + resumed] == [i["position"] for i in follow(service)]
    assert all(i == data["position"] for i, data in first + resumed)
    # A client that went away leaves nothing waiting behind it.
    wait_until(lambda: service.runtime.bell.waiting() == 0)


def test_a_long_poll_whose_client_leaves_stops_waiting(service: Service) -> None:
    """A long-poll is held up to its `wait`; a client gone before then frees it at once.

    Without this a closed board kept its request open for the whole wait, and stopping
    the service waited for it."""
    scan(service, "e0")
    head = follow(service)[-1]["position"]
    url = f"{service.url}{CHANGES.format(tenant='demo')}?after={head}&wait=30"
    with httpx.Client(timeout=0.5) as client, contextlib.suppress(httpx.ReadTimeout):
        client.get(url, headers=auth())  # gives up after half a second and disconnects
    started = time.monotonic()
    wait_until(lambda: service.runtime.bell.waiting() == 0, timeout=5)
    assert time.monotonic() - started < 5
    # A client that stays gets the next fact as soon as it commits.
    threading.Timer(0.3, scan, (service, "e1")).start()
    answer = service.client.get(url, headers=auth())
    assert [i["data"]["eventId"] for i in answer.json()["items"]] == ["e1"]


def test_every_new_route_is_per_tenant(service: Service) -> None:
    Api(service).register("o1", order("o1"))
    scan(service, "e1")
    other = Api(service, "other")
    other.register("o9", order("o9"))
    service.post_event({**EXAMPLE_EVENT, "eventId": "x1", "orderNumber": "o9"}, tenant="other")
    routes = [
        ("GET", "/pick-pack/demo/changes", None),
        ("GET", "/pick-pack/demo/orders/o1/history", None),
        ("GET", "/pick-pack/demo/orders/o1", {"asOf": "2100-01-01T00:00:00Z"}),
        (
            "POST",
            "/pick-pack/demo/orders/o1/corrections",
            {
                "correctionId": "c1",
                "productId": "123",
                "packedAmount": 1,
                "unit": "H87",
                "reason": "x",
            },
        ),
    ]
    for method, path, extra in routes:
        kw: dict[str, Any] = {"headers": auth("other")}
        if method == "GET":
            kw["params"] = extra or {}
        else:
            kw["json"] = extra
        resp = service.client.request(method, path, **kw)
        assert resp.status_code == 403, (path, resp.text)
    demo = follow(service)
    assert {i["orderId"] for i in demo} == {"o1"}
    assert {i["orderId"] for i in follow(service, tenant="other")} == {"o9"}
    # Another tenant's order is unknown here, in the history and as of any time.
    resp = service.client.get("/pick-pack/demo/orders/o9/history", headers=auth())
    assert resp.status_code == 404
    resp = service.client.get(
        "/pick-pack/demo/orders/o9", params={"asOf": "2100-01-01T00:00:00Z"}, headers=auth()
    )
    assert resp.status_code == 404


def test_changes_parameters_are_checked(service: Service) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"wait": 31}, {"after": -1}, {"wait": "x"}):
        resp = service.client.get("/pick-pack/demo/changes", params=params, headers=auth())
        assert resp.status_code == 400, params
    resp = service.client.get(
        "/pick-pack/demo/changes",
        headers={**auth(), "Accept": "text/event-stream", "Last-Event-ID": "abc"},
    )
    assert resp.status_code == 400


def test_events_export_writes_the_feed_as_json_lines(service: Service, tmp_path: Path) -> None:
    scan(service, "e1")
    Api(service).register("o2", order("o2"))
    env = {
        **os.environ,
        "PICKPACK_DATABASE_URL": service.runtime.database.url,
        "PICKPACK_DATA_DIR": str(tmp_path / "data"),
    }
    cmd = [sys.executable, "-m", "cli.main", "events", "export", "--tenant", "demo"]
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=True)
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert lines == follow(service)
    first = lines[0]["position"]
    done = subprocess.run(
        [*cmd, "--after", str(first)], env=env, capture_output=True, timeout=60, check=True
    )
    assert [orjson.loads(line) for line in done.stdout.splitlines()] == lines[1:]

    # --follow keeps waiting and writes new facts as they commit.
    proc = subprocess.Popen(
        [*cmd, "--after", str(lines[-1]["position"]), "--follow"],
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        scan(service, "e-followed")
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert orjson.loads(line)["data"]["eventId"] == "e-followed"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_openapi_document_describes_the_story(service: Service) -> None:
    spec = service.client.get("/openapi.json").json()
    paths = spec["paths"]
    feed = paths["/pick-pack/{tenant}/changes"]["get"]
    assert {p["name"] for p in feed["parameters"]} >= {"after", "limit", "wait", "Last-Event-ID"}
    assert "text/event-stream" in feed["responses"]["200"]["content"]
    assert "get" in paths["/pick-pack/{tenant}/orders/{orderId}/history"]
    fix = paths["/pick-pack/{tenant}/orders/{orderId}/corrections"]["post"]
    assert "409" in fix["responses"]
    body = spec["components"]["schemas"]["CorrectionCreate"]
    assert set(body["required"]) >= {"correctionId", "productId", "unit", "reason"}
    get_order = paths["/pick-pack/{tenant}/orders/{orderId}"]["get"]
    assert "asOf" in {p["name"] for p in get_order["parameters"]}
