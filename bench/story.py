"""The order's story: history and change-feed reads on a large store; idle followers' cost.

    python bench/story.py [--events 1000000] [--orders 1000] [--clients 100]
                          [--idle-seconds 20] [--database-url URL]

Seeds N packing events (COPY, bench/seed.py; with 1,000 orders each order holds N/1000
facts, so with a million events an order's history is 1,000 facts) into a fresh
database, starts `pickpack serve` on it and times, median of 7 after one warm-up:
GET /orders/{id}/history?limit=1000 of one order, and GET /changes?limit=1000 from the
start, the middle and the end of the store. Then it opens `--clients` idle followers
(half long-polls with wait=30, half server-sent-event streams), lets them sit for
`--idle-seconds` with nothing being written, and prints the CPU the `serve` process used
meanwhile, as a share of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.auth import VIEW, mint_token  # noqa: E402
from bench.ingest import SECRET, serving_caught_up  # noqa: E402
from bench.seed import seeded_database  # noqa: E402
from bench.timing import median_seconds  # noqa: E402

PORT = 18244


def median_ms(fn: Callable[[], object]) -> float:
    """Median of 7 after one warm-up, in milliseconds."""
    return median_seconds(fn, repeat=7, warmup=1) * 1000


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_followers(
    base: str, headers: dict[str, str], clients: int, seconds: float, pid: int
) -> float:
    """`clients` followers waiting at the head (half long-polls, half streams): the CPU
    seconds `pid` used while they waited, once all had connected."""
    limits = httpx.Limits(max_connections=clients + 10)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as c:
        head = (await c.get("/pick-pack/demo/changes", params={"after": 2**62})).json()["next"]

        async def long_poll() -> None:
            while True:
                await c.get("/pick-pack/demo/changes", params={"after": head, "wait": 30})

        async def stream() -> None:
            sse = {"Accept": "text/event-stream", "Last-Event-ID": str(head)}
            async with c.stream("GET", "/pick-pack/demo/changes", headers=sse) as resp:
                async for _ in resp.aiter_lines():
                    pass

        tasks = [asyncio.create_task(long_poll() if i % 2 else stream()) for i in range(clients)]
        await asyncio.sleep(3)  # connected and waiting
        before = process_cpu(pid)
        await asyncio.sleep(seconds)
        used = process_cpu(pid) - before
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return used


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with seeded_database(
        args.database_url, "pp_bench_story", args.events, tenant="demo", orders=args.orders
    ) as (url, seconds):
        print(f"seeded {args.events:,} events ({args.orders:,} orders) in {seconds:.1f}s")
        with serving_caught_up(url, PORT, args.events, "pp-story-data-") as (base, service):
            headers = {"Authorization": f"Bearer {mint_token(SECRET, 'demo', [VIEW])}"}
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                history = client.get("/pick-pack/demo/orders/o0/history", params={"limit": 1000})
                facts = len(history.json()["items"])

                def get_history() -> None:
                    client.get(
                        "/pick-pack/demo/orders/o0/history", params={"limit": 1000}
                    ).raise_for_status()

                print(
                    f"history of an order ({facts} facts), limit 1000: "
                    f"{median_ms(get_history):6.1f} ms"
                )
                for name, after in (
                    ("start", 0),
                    ("middle", args.events // 2),
                    ("end", args.events - 1000),
                ):

                    def get_changes(after: int = after) -> None:
                        page = client.get(
                            "/pick-pack/demo/changes", params={"after": after, "limit": 1000}
                        )
                        assert len(page.json()["items"]) == 1000

                    print(
                        f"changes?limit=1000 from the {name:<6}: {median_ms(get_changes):6.1f} ms"
                    )
            used = asyncio.run(
                idle_followers(base, headers, args.clients, args.idle_seconds, service.pid)
            )
            print(
                f"{args.clients} idle followers for {args.idle_seconds:.0f}s: serve used "
                f"{used:.2f} s of CPU, {100 * used / args.idle_seconds:.1f}% of a core"
            )


if __name__ == "__main__":
    main()
