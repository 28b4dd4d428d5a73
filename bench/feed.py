"""Feed benchmark: GET /events with pageSize 20000 on a store of N events.

    python bench/feed.py [--events 1000000] [--database-url URL]

Seeds N events (COPY, bench/seed.py) into a fresh database on the embedded PostgreSQL
(or the given server), starts `pickpack serve` on it, and times GET /events pages of
20,000: the first page, pages deep into the feed (offset paging), and a page that
starts from a `timestamp` (the keyset form: the index range starts there). The baseline
in the same run is the bare SQL that selects the same page's stored states.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import VIEW, mint_token  # noqa: E402
from bench.ingest import SECRET, serving_caught_up  # noqa: E402
from bench.seed import seeded_database  # noqa: E402
from bench.timing import median_seconds  # noqa: E402

PORT = 18234
PAGE = 20_000


def timed(fn: Callable[[], object]) -> float:
    """Median of 5, in seconds."""
    return median_seconds(fn, repeat=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with seeded_database(args.database_url, "pp_bench_feed", args.events, tenant="demo") as (
        feed_url,
        seconds,
    ):
        print(f"seeded {args.events:,} events in {seconds:.1f}s")
        with serving_caught_up(feed_url, PORT, args.events, "pp-feed-data-") as (base, _):
            headers = {"Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW])}"}
            last_page = args.events // PAGE
            cases = [
                ("page 1", {"pageSize": PAGE, "pageNumber": 1}, 0, None),
                (
                    f"page {last_page // 2}",
                    {"pageSize": PAGE, "pageNumber": last_page // 2},
                    (last_page // 2 - 1) * PAGE,
                    None,
                ),
                (
                    f"page {last_page}",
                    {"pageSize": PAGE, "pageNumber": last_page},
                    (last_page - 1) * PAGE,
                    None,
                ),
                (
                    "timestamp=12:00Z, page 1",
                    {"pageSize": PAGE, "timestamp": "2024-05-01T12:00:00Z"},
                    0,
                    "2024-05-01T12:00:00Z",
                ),
            ]
            with (
                httpx.Client(base_url=base, headers=headers, timeout=120) as client,
                psycopg.connect(feed_url) as conn,
            ):
                for name, params, offset, ts in cases:
                    response = client.get("/pick-pack/demo/events", params=params)
                    assert response.status_code == 200 and len(response.json()) == PAGE, name

                    def http_get(params: dict = params) -> None:
                        client.get("/pick-pack/demo/events", params=params).raise_for_status()

                    def bare_sql(offset: int = offset, ts: str | None = ts) -> None:
                        conn.execute(
                            "SELECT s.state FROM packing_events p JOIN stored_events s "
                            "ON s.notification_id = p.position WHERE p.tenant = 'demo' "
                            "AND p.event_time > coalesce(%s::timestamptz, '-infinity') "
                            "ORDER BY p.event_time, p.position OFFSET %s LIMIT %s",
                            (ts, offset, PAGE),
                        ).fetchall()

                    h, b = timed(http_get), timed(bare_sql)
                    print(
                        f"{name:<26} GET {h * 1000:7.0f} ms   bare SQL {b * 1000:7.0f} ms   "
                        f"ratio {h / b:5.2f}"
                    )


if __name__ == "__main__":
    main()
