"""How long a migration holds its tables on a large store.

    python bench/migration.py [--events 1000000] [--orders 20000] [--version 6]
                              [--database-url URL]

Migrates a fresh database (on an embedded PostgreSQL, or on `--database-url`'s server)
to the migration before `--version`, seeds `--events` packing events over `--orders`
orders (and an order_status row per order), analyzes, then times `migrate` applying the
rest: the seconds during which scanners' appends wait for the migration's locks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402
from bench.seed import seed  # noqa: E402
from ledger.adapters.database import start_embedded  # noqa: E402
from ledger.adapters.migrate import migrate, shipped_migrations  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--version", type=int, default=6)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    db = None
    server_url = args.database_url
    if server_url is None:
        db = start_embedded(Path(scratch_dir("pp-migration-")) / "pg")
        server_url = db.url
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS pp_bench_migration WITH (FORCE)")
            conn.execute("CREATE DATABASE pp_bench_migration")
        url = psycopg.conninfo.make_conninfo(server_url, dbname="pp_bench_migration")
        migrate(url, [m for m in shipped_migrations() if m.version < args.version])
        seconds = seed(url, args.events, tenant="demo", orders=args.orders, products=5)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO order_status (tenant, order_id) "
                "SELECT 'demo', 'o' || i FROM generate_series(1, %s) i",
                (args.orders,),
            )
            conn.execute(sql.SQL("VACUUM ANALYZE"))
        started = time.perf_counter()
        applied = migrate(url)
        took = time.perf_counter() - started
        print(
            f"seeded {args.events:,} events in {seconds:.1f} s; {', '.join(applied)}: {took:.1f} s"
        )
    finally:
        if db is not None:
            db.stop()


if __name__ == "__main__":
    main()
