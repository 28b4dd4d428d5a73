"""Backup-and-restore drill: what docs/how-to/backup-restore.md tells an operator to do,
run end to end and checked.

    python bench/backup_drill.py [--server-url URL] [--orders 20] [--scans 200] [--seed 0]

1. A fresh database; `pickpack serve` on it (a free port, a scratch data directory).
2. Fill it over HTTP: register orders, post scans, finish a quarter of the orders,
   queue a MANUAL recalculation job (no Order Service: its requests stay PENDING and are
   part of what a backup must keep). `--seed N` first COPYs N more scans into the store
   for volume (bench/seed.py, tenant `bulk`), before the service starts.
3. `pg_dump -Fc` of the live database while the service runs.
4. `pg_restore` into a new, empty database; then, before any service runs on it,
   `pickpack migrate` (nothing to apply), `pickpack projections status` (no position
   beyond the head), `pickpack projections rebuild --all`.
5. `pickpack serve` on the restored copy; compare with the original: every table's
   content (views and tracking positions included), every order body, the packlists and
   the change feed, over HTTP.

Prints one JSON object (timings, sizes, what was compared) and exits 0 when the copy
equals the original, 1 otherwise. The pg_dump and pg_restore used are those whose major
version equals the server's (Debian's /usr/lib/postgresql/N/bin or /usr/bin, else the
embedded pgserver's); `--pg-bin DIR` names them.

Without --server-url (or PICKPACK_TEST_DATABASE_URL) it starts an embedded PostgreSQL in
a scratch directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.services.signing import MANAGE, VIEW, mint_token  # noqa: E402

TENANT = "demo"
SITE = "main"
DAYS = ["2026-12-01", "2026-12-02"]
SECRET = "backup-drill-secret-" + uuid.uuid4().hex
# Tables whose rows a rebuild or a run legitimately changes: progress of a rebuild.
NOT_COMPARED = {"projection_rebuilds"}


@dataclass
class Report:
    server_version: str = ""
    pg_bin: str = ""
    events: int = 0
    http_scans: int = 0
    seeded_scans: int = 0
    orders: int = 0
    database_bytes: int = 0
    dump_bytes: int = 0
    fill_seconds: float = 0.0
    dump_seconds: float = 0.0
    baseline_copy_seconds: float = 0.0  # COPY (SELECT * FROM stored_events), read and dropped
    restore_seconds: float = 0.0
    status_before_writes: str = ""
    rebuild_seconds: float = 0.0
    tables_compared: int = 0
    orders_compared: int = 0
    packlists_compared: int = 0
    feed_items_compared: int = 0
    differences: list[str] = field(default_factory=list)


def with_dbname(url: str, name: str) -> str:
    return make_conninfo(url, dbname=name)


def dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def admin(server_url: str, statement: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(statement.encode())


def server_major(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        text = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    return num // 10000, text


def tool_major(binary: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else None


def find_pg_bin(major: int) -> Path:
    """A directory whose pg_dump and pg_restore have the server's major version."""
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin"), Path("/usr/bin")]
    with suppress(ImportError):
        import pgserver

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    for directory in candidates:
        if all(tool_major(directory / t) == major for t in ("pg_dump", "pg_restore")):
            return directory
    raise SystemExit(
        f"no pg_dump/pg_restore of major version {major} found in "
        + ", ".join(map(str, candidates))
        + " (name them with --pg-bin)"
    )


def libpq_env(url: str) -> dict[str, str]:
    """The database to connect to, as libpq environment variables (no password on a
    command line)."""
    parts = conninfo_to_dict(url)
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD"}
    names |= {"dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}
    return {names[k]: str(v) for k, v in parts.items() if k in names and v is not None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pickpack_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKPACK_")}
    env |= {
        "PICKPACK_DATABASE_URL": database_url,
        "PICKPACK_DATA_DIR": str(data_dir),
        "PICKPACK_JWT_SECRET": SECRET,
        "PICKPACK_LOG_FORMAT": "json",
    }
    return env


def pickpack(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pickpack {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return done.stdout


@contextmanager
def serving(database_url: str, data_dir: Path) -> Iterator[str]:
    port = free_port()
    log = data_dir / f"serve-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        env=pickpack_env(database_url, data_dir),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited {proc.returncode}: {log.read_text()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve not ready: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def headers() -> dict[str, str]:
    token = mint_token(SECRET, TENANT, [VIEW, MANAGE], subject="drill", ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}", "saas-token": "drill"}


def order_body(i: int) -> dict[str, Any]:
    day = DAYS[i % len(DAYS)]
    return {
        "siteCode": SITE,
        "customer": {"firstName": "Drill", "lastName": f"Customer {i}"},
        "delivery": {
            "deliveryTimeModel": {"deliveryDate": day},
            "deliveryWindow": {"deliveryTimeTo": f"{day}T{8 + i % 10:02d}:00:00.000Z"},
        },
        "entries": [
            {"entryId": f"e{k}", "productId": f"p{k}", "orderUnit": "H87", "totalCount": 40}
            for k in range(3)
        ],
    }


def fill(url: str, orders: int, scans: int) -> None:
    """Orders, scans, finishes and a job, over HTTP, as scanners and pack stations do."""
    h = headers()

    def post_scan(client: httpx.Client, n: int) -> None:
        body = {
            "eventId": f"drill-{n}",
            "orderNumber": f"ORD-{n % orders}",
            "productId": f"p{n // orders % 3}",
            "pickedAmount": 1,
            "packedAmount": n % 2,
            "canceledAmount": 0,
            "unit": "H87",
            "timestamp": f"2026-12-01T07:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
            "site": SITE,
        }
        r = client.post(f"/pick-pack/{TENANT}/events", json=body, headers=h)
        r.raise_for_status()

    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(orders):
            client.put(
                f"/pick-pack/{TENANT}/orders/ORD-{i}", json=order_body(i), headers=h
            ).raise_for_status()

        def batch(start: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as own:
                for n in range(start, scans, 4):
                    post_scan(own, n)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(batch, range(4)))
        for i in range(0, orders, 4):
            client.post(f"/pick-pack/{TENANT}/orders/ORD-{i}/finish", headers=h).raise_for_status()
        client.post(
            f"/pick-pack/{TENANT}/jobs/recalculations",
            json={"jobType": "MANUAL", "orderIds": [f"ORD-{i}" for i in range(1, orders, 4)]},
            headers=h,
        ).raise_for_status()


def caught_up(database_url: str, timeout: float = 120.0) -> None:
    """The source's views have applied every event (so both sides are complete)."""
    env = pickpack_env(database_url, Path(tempfile.gettempdir()))
    deadline = time.monotonic() + timeout
    while True:
        rows = projection_status(pickpack(env, "projections", "status"))
        if rows and all(position == head for position, head in rows.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"projections did not catch up: {rows}")
        time.sleep(0.3)


def projection_status(text: str) -> dict[str, tuple[int, int]]:
    """`pickpack projections status`: {projection: (position, head)}."""
    rows: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[1:]:
        parts = line.replace(",", "").split()  # figures are printed with thousands separators
        if len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
            rows[parts[0]] = (int(parts[1]), int(parts[2]))
    return rows


def copy_out_seconds(url: str) -> float:
    """The baseline for the dump: reading the event store's table once, as COPY does."""
    started = time.perf_counter()
    with (
        psycopg.connect(url) as conn,
        conn.cursor().copy(
            "COPY (SELECT * FROM stored_events) TO STDOUT"  # a partitioned table: by a query
        ) as cp,
    ):
        for _ in cp:
            pass
    return time.perf_counter() - started


def table_digests(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        out = {}
        for t in tables:
            if t in NOT_COMPARED:
                continue
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM \"{t}\" x"  # noqa: E501
            ).fetchone()
            assert row is not None
            out[t] = f"{row[0]} rows, md5 {row[1]}"
    return out


def http_snapshot(url: str, orders: int) -> dict[str, Any]:
    h = headers()
    snap: dict[str, Any] = {"orders": {}, "packlists": {}, "feed": []}
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(orders):
            r = client.get(f"/pick-pack/{TENANT}/orders/ORD-{i}", headers=h)
            snap["orders"][i] = (r.status_code, r.json())
        for day in DAYS:
            r = client.get(
                f"/pick-pack/{TENANT}/orders",
                params={"siteCode": SITE, "deliveryDate": day},
                headers=h,
            )
            snap["packlists"][day] = (r.status_code, r.json())
        after = 0
        while True:
            r = client.get(
                f"/pick-pack/{TENANT}/changes", params={"after": after, "limit": 1000}, headers=h
            )
            r.raise_for_status()
            page = r.json()
            snap["feed"] += page["items"]
            if not page["items"]:
                break
            after = page["next"]
    return snap


def drill(server_url: str, args: argparse.Namespace, scratch: Path) -> Report:
    report = Report(orders=args.orders, http_scans=args.scans, seeded_scans=args.seed)
    major, report.server_version = server_major(server_url)
    pg_bin = Path(args.pg_bin) if args.pg_bin else find_pg_bin(major)
    report.pg_bin = str(pg_bin)
    suffix = uuid.uuid4().hex[:10]
    source = with_dbname(server_url, f"pp_drill_src_{suffix}")
    copy = with_dbname(server_url, f"pp_drill_copy_{suffix}")
    for url in (source, copy):
        admin(server_url, f'CREATE DATABASE "{dbname(url)}"')
    try:
        started = time.perf_counter()
        if args.seed:
            from bench.seed import seed
            from ledger.adapters.migrate import migrate

            migrate(source)
            seed(source, args.seed, tenant="bulk", orders=max(1, args.seed // 50))
        with serving(source, scratch / "source") as url:
            fill(url, args.orders, args.scans)
            caught_up(source)
            report.fill_seconds = time.perf_counter() - started
            with psycopg.connect(source) as conn:
                report.events = int(
                    conn.execute("SELECT count(*) FROM stored_events").fetchone()[0]  # type: ignore[index]
                )
                report.database_bytes = int(
                    conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
                )

            # The backup, taken while the service runs.
            dump = scratch / "pickpack.dump"
            started = time.perf_counter()
            subprocess.run(
                [str(pg_bin / "pg_dump"), "-Fc", "-f", str(dump)],
                env={**os.environ, **libpq_env(source)},
                check=True,
            )
            report.dump_seconds = time.perf_counter() - started
            report.dump_bytes = dump.stat().st_size
            report.baseline_copy_seconds = copy_out_seconds(source)
            original_tables = table_digests(source)
            original = http_snapshot(url, args.orders)

        # The restore, into an empty database, before any service runs on it.
        started = time.perf_counter()
        subprocess.run(
            [
                str(pg_bin / "pg_restore"),
                "--no-owner",
                "--exit-on-error",
                "-d",
                dbname(copy),
                str(dump),
            ],
            env={**os.environ, **libpq_env(copy)},
            check=True,
        )
        report.restore_seconds = time.perf_counter() - started
        env = pickpack_env(copy, scratch / "copy")
        applied = pickpack(env, "migrate").strip()
        if applied != "nothing to apply":
            report.differences.append(f"pickpack migrate on the restored copy: {applied}")
        status = pickpack(env, "projections", "status")
        report.status_before_writes = status.strip()
        for name, (position, head) in projection_status(status).items():
            if position > head:
                report.differences.append(f"{name} at {position}, beyond the head {head}")
        started = time.perf_counter()
        pickpack(env, "projections", "rebuild", "--all")
        report.rebuild_seconds = time.perf_counter() - started

        restored_tables = table_digests(copy)
        with serving(copy, scratch / "copy") as url:
            restored = http_snapshot(url, args.orders)

        report.tables_compared = len(original_tables)
        for table in sorted(set(original_tables) | set(restored_tables)):
            a, b = original_tables.get(table), restored_tables.get(table)
            if a != b:
                report.differences.append(f"table {table}: original {a}, restored {b}")
        for key in ("orders", "packlists"):
            for k, value in original[key].items():
                if restored[key].get(k) != value:
                    report.differences.append(f"{key} {k} differs")
        report.orders_compared = len(original["orders"])
        report.packlists_compared = len(original["packlists"])
        report.feed_items_compared = len(original["feed"])
        if original["feed"] != restored["feed"]:
            report.differences.append("the change feed differs")
        if not original["feed"]:
            report.differences.append("the change feed is empty: nothing was compared")
        return report
    finally:
        if not args.keep:
            for url in (source, copy):
                with suppress(psycopg.Error):
                    admin(server_url, f'DROP DATABASE IF EXISTS "{dbname(url)}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--server-url",
        default=os.environ.get("PICKPACK_TEST_DATABASE_URL"),
        help="a PostgreSQL server to make the drill's two databases on (default: "
        "PICKPACK_TEST_DATABASE_URL, else an embedded PostgreSQL)",
    )
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--scans", type=int, default=200, help="scans posted over HTTP")
    parser.add_argument("--seed", type=int, default=0, help="scans COPYed in first, for volume")
    parser.add_argument("--pg-bin", help="directory of pg_dump and pg_restore")
    parser.add_argument("--keep", action="store_true", help="keep both databases")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="pp-drill-"))
    try:
        if args.server_url:
            report = drill(args.server_url, args, scratch)
        else:
            from ledger.adapters.database import start_embedded

            server = start_embedded(scratch / "pg")
            try:
                report = drill(server.url, args, scratch)
            finally:
                server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(report.__dict__, indent=2))
    return 1 if report.differences else 0


if __name__ == "__main__":
    sys.exit(main())
