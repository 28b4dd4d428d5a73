"""`pickpack database move --to URL`: the embedded store (PostgreSQL 16) onto a server of
another major version (the machine's PostgreSQL, 15 here), everything carried: events,
views and their positions, queued recalculations, OAuth clients, the service's keys. The
moved store serves the same answers, and both sides are checked to agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg

from cli.clients import add as add_client
from devtools.harness.faults import ROOT
from devtools.harness.service import SECRET, auth, start_service
from devtools.harness.support import numbered_scan, scan_body
from ledger.adapters.database import start_embedded


def serve_briefly(db_url: str, data_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    server, thread, runtime, url = start_service(
        db_url, tmp_path, env={"PICKPACK_DATA_DIR": str(data_dir)}
    )

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        runtime.stop()

    return url, stop


def move(data_dir: Path, target: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    env.update(PICKPACK_DATA_DIR=str(data_dir), PICKPACK_JWT_SECRET=SECRET)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "database", "move", "--to", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_embedded_store_moves_to_a_server_and_serves_the_same(
    embedded_root: Path, db_url: str, tmp_path: Path
) -> None:
    data_dir = embedded_root / "data"
    embedded = start_embedded(data_dir / "pg")
    url, stop = serve_briefly(embedded.url, data_dir, tmp_path / "before")
    try:
        with httpx.Client(base_url=url, headers=auth(), timeout=30) as http:
            for i in range(30):
                assert (
                    http.post(
                        "/pick-pack/demo/events", json=scan_body(numbered_scan(i))
                    ).status_code
                    == 200
                )
            job = http.post(
                "/pick-pack/demo/jobs/recalculations",
                json={"jobType": "MANUAL", "orderIds": ["o1", "o2"]},
            ).json()["jobId"]
            feed_before = http.get("/pick-pack/demo/events", params={"pageSize": 100}).json()
            job_before = http.get(f"/pick-pack/demo/jobs/recalculations/{job}").json()
        with psycopg.connect(embedded.url, autocommit=True) as conn:
            client_id, secret = add_client(conn, "demo", ["pickpack.pickpack_view"], "scanner 1")
            queued = conn.execute("SELECT count(*) FROM recalculation_outbox").fetchone()
    finally:
        stop()
        embedded.stop()
    assert queued and queued[0] >= 2, "recalculations are queued (no Order Service URL)"

    moved = move(data_dir, db_url)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "stored_events: 30 rows, the same on both sides" in moved.stdout
    assert "recalculation_outbox" in moved.stdout and "oauth_clients: 1 rows" in moved.stdout
    with psycopg.connect(db_url) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
    print(f"target PostgreSQL {version}")  # 15 on the shared machine; the source is 16

    url, stop = serve_briefly(db_url, tmp_path / "after-data", tmp_path / "after")
    try:
        with httpx.Client(base_url=url, headers=auth(), timeout=30) as http:
            assert (
                http.get("/pick-pack/demo/events", params={"pageSize": 100}).json() == feed_before
            )
            assert http.get(f"/pick-pack/demo/jobs/recalculations/{job}").json() == job_before
            issued = http.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                    "scope": "tenant=demo",
                },
            )
            assert issued.status_code == 200, issued.text
            # The same eventId with other content is still a conflict: the index moved too.
            other = {**scan_body(numbered_scan(3)), "packedAmount": 99}
            assert http.post("/pick-pack/demo/events", json=other).status_code == 409
            assert (
                http.post("/pick-pack/demo/events", json=scan_body(numbered_scan(30))).status_code
                == 200
            )
    finally:
        stop()

    again = move(data_dir, db_url)
    assert again.returncode == 1 and "not empty" in again.stderr, again.stdout + again.stderr
