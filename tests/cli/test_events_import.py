"""`pickpack events import`: a store round-tripped through export, import and rebuild.

Every expectation is read from the original store (its pages over HTTP, its views, its
export), never from what the import wrote.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import zstandard

from cli.main import main
from devtools.harness.pg import DatabaseFactory
from devtools.harness.service import Service, auth, start_service
from devtools.harness.support import view_orders, view_totals
from tests.helpers.pack_station import ASSIGNEE_A, Api, order

DAY = "2030-01-02"


def run(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`pickpack ARGS` as a user runs it: the console script in a process of its own."""
    env = {
        **os.environ,
        "PICKPACK_DATABASE_URL": url,
        "PICKPACK_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, timeout=120
    )


def call(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`pickpack ARGS` through the same `main` in this process: what it prints and its
    exit code, without a new interpreter's start (seconds on a loaded machine)."""
    env = {"PICKPACK_DATABASE_URL": url, "PICKPACK_DATA_DIR": str(tmp_path / "data")}
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    out.flush()
    err.flush()
    stdout = out.buffer.getvalue()  # type: ignore[attr-defined]
    stderr = err.buffer.getvalue()  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(["pickpack", *args], code, stdout, stderr)


def export(url: str, tmp_path: Path) -> list[dict[str, Any]]:
    done = call(url, tmp_path, "events", "export", "--tenant", "demo")
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def queued(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM recalculation_outbox").fetchone()
    return int(row[0]) if row else 0


def without_positions(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in line.items() if k != "position"} for line in lines]


def a_day_of_packing(service: Service) -> None:
    """Every kind of fact: registrations, scans (of a known and an unknown order),
    assignees, packaging, a correction, finish (with its holding area), a cancellation."""
    api = Api(service)
    two = order("o1", DAY)
    two["entries"].append(
        {"entryId": "e2", "productId": "p2", "totalCount": 1000, "orderUnit": "GRM"}
    )
    api.register("o1", two)
    api.register("o2", order("o2", DAY))
    api.register("o3", order("o3", DAY))
    assert api.assign("o1", ASSIGNEE_A).status_code in (200, 201)
    assert api.event("s1", "o1", "p1", pickedAmount=2, packedAmount=1).status_code == 200
    assert api.event("s2", "o1", "p2", unit="GRM", pickedAmount=900).status_code == 200
    assert api.event("s3", "o1", "p1", packedAmount=1).status_code == 200
    assert api.event("s4", "o9", "p7", packedAmount=4).status_code == 200  # not registered
    assert api.event("s5", "o2", "p1", pickedAmount=1).status_code == 200
    fix = service.client.post(
        "/pick-pack/demo/orders/o1/corrections",
        json={
            "correctionId": "c1",
            "productId": "p2",
            "unit": "GRM",
            "reason": "scale",
            "pickedAmount": 100,
        },
        headers=auth(),
    )
    assert fix.status_code == 200, fix.text
    packaging = [{"entryId": "e1", "packedCount": 1}]
    assert api.packaging("o1", packaging).status_code in (200, 204)
    assert service.client.post("/pick-pack/demo/orders/o1/finish", headers=auth()).is_success
    assert api.patch("o3", "PACKED").is_success  # the second holding area
    assert api.patch("o2", "CANCELLED").is_success
    assert api.event("s6", "o3", "p1", pickedAmount=2, packedAmount=2).status_code == 200


def pages(client: httpx.Client) -> dict[str, Any]:
    """What clients read: the order bodies, the packlist, GET /events."""
    shown: dict[str, Any] = {}
    for order_id in ("o1", "o2", "o3"):
        resp = client.get(f"/pick-pack/demo/orders/{order_id}", headers=auth())
        assert resp.status_code == 200, resp.text
        shown[order_id] = resp.json()
    packlist = client.get(
        "/pick-pack/demo/orders", params={"siteCode": "main", "deliveryDate": DAY}, headers=auth()
    )
    assert packlist.status_code == 200, packlist.text
    shown["packlist"] = packlist.json()
    events = client.get("/pick-pack/demo/events", params={"pageSize": 100}, headers=auth())
    assert events.status_code == 200, events.text
    shown["events"] = events.json()
    return shown


@pytest.fixture
def staging(databases: DatabaseFactory) -> Iterator[str]:
    url = databases.migrated()
    yield url
    databases.drop(url)


def test_a_store_round_trips_through_export_import_and_rebuild(
    service: Service, staging: str, tmp_path: Path
) -> None:
    a_day_of_packing(service)
    source = service.runtime.database.url
    original = export(source, tmp_path)
    expected = pages(service.client)
    totals, statuses = view_totals(source, "demo"), view_orders(source, "demo")
    kinds = {line["type"] for line in original}
    assert {
        "OrderRegistered",
        "PackingEventRecorded",
        "CorrectionRecorded",
        "OrderFinished",
        "HoldingAreaAssigned",
        "OrderCancelled",
        "AssigneeAdded",
    } <= kinds
    dump = tmp_path / "demo.jsonl"
    dump.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in original))

    done = run(staging, tmp_path, "events", "import", str(dump), "--tenant", "demo")
    assert done.returncode == 0, done.stderr
    n = len(original)
    assert done.stdout.decode().strip() == (
        f"read {n}, recorded {n}, already there 0, conflicting 0, refused 0"
    )
    # A finish brought back queues no calculations request: the Order Service had them.
    assert queued(source) == 1 and queued(staging) == 0
    done = call(staging, tmp_path, "projections", "rebuild", "--all")
    assert done.returncode == 0, done.stderr

    # The feed: the same facts in the same order, each recorded at its original instant.
    assert without_positions(export(staging, tmp_path)) == without_positions(original)
    assert view_totals(staging, "demo") == totals
    assert view_orders(staging, "demo") == statuses
    server, thread, runtime, url = start_service(staging, tmp_path / "staging")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert pages(client) == expected
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()

    # Importing again (here compressed) records nothing; so does importing into the source.
    packed = tmp_path / "demo.jsonl.gz"
    packed.write_bytes(gzip.compress(dump.read_bytes()))
    for url in (staging, source):
        done = call(url, tmp_path, "events", "import", str(packed), "--tenant", "demo")
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().strip() == (
            f"read {n}, recorded 0, already there {n}, conflicting 0, refused 0"
        )
    assert without_positions(export(staging, tmp_path)) == without_positions(original)
    assert export(source, tmp_path) == original


def test_an_interrupted_import_resumes_where_it_stopped(
    service: Service, staging: str, tmp_path: Path
) -> None:
    a_day_of_packing(service)
    original = export(service.runtime.database.url, tmp_path)
    lines = [orjson.dumps(line) for line in original]
    broken_at = 9  # the file stops being an export at line 9
    dump = tmp_path / "demo.jsonl"
    dump.write_bytes(b"\n".join([*lines[: broken_at - 1], b"{not json", *lines[broken_at:]]))

    done = call(
        staging, tmp_path, "events", "import", str(dump), "--tenant", "demo", "--batch", "3"
    )
    assert done.returncode == 6, done.stderr  # documented: the file is not an export
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1
    assert message.startswith(f"pickpack: {dump} is not an export: line {broken_at}: not JSON")
    recorded = 6  # two batches of three committed before the bad line's batch
    assert len(export(staging, tmp_path)) == recorded

    # Fixed, and compressed as `zstd` writes it, in two frames as `cat a.zst b.zst` would:
    # the same first line, so the same import, which resumes.
    fixed = tmp_path / "demo.jsonl.zst"
    half = len(lines) // 2
    fixed.write_bytes(
        zstandard.compress(b"".join(line + b"\n" for line in lines[:half]))
        + zstandard.compress(b"".join(line + b"\n" for line in lines[half:]))
    )
    dump = fixed
    done = call(
        staging, tmp_path, "events", "import", str(dump), "--tenant", "demo", "--batch", "3"
    )
    assert done.returncode == 0, done.stderr
    assert f"resumed after position {original[recorded - 1]['position']:,}" in done.stderr.decode()
    n = len(original)
    # The summary covers the whole import; nothing was read twice.
    assert done.stdout.decode().strip() == (
        f"read {n}, recorded {n}, already there 0, conflicting 0, refused 0"
    )
    assert without_positions(export(staging, tmp_path)) == without_positions(original)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'[{"id": "o1"}]\n', "line 1: a line must be a JSON object"),
        (
            b'{"position": 1, "recordedAt": "2030-01-02T10:00:00.000Z", "orderId": "o1", '
            b'"type": "Shipped", "data": {}}\n',
            "line 1: type: 'Shipped' is not a fact",
        ),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_in_one_sentence(
    db_url: str, tmp_path: Path, content: bytes, reason: str
) -> None:
    bad = tmp_path / "orders.json"
    bad.write_bytes(content)
    done = call(db_url, tmp_path, "events", "import", str(bad), "--tenant", "demo")
    assert done.returncode == 6
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1
    assert message.startswith(f"pickpack: {bad} is not an export: {reason}")
    assert export(db_url, tmp_path) == []
