"""Seed the event store fast (COPY), in exactly the form the service writes events.

Used by the benchmarks: each row is what EventStore.append_packing_events would have
stored (same topic, same JSON state as the library's transcoder produces; the script
checks one row against the library's own mapper), plus its packing_events index row.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import orjson
import psycopg
from psycopg.types.json import Jsonb  # noqa: F401  (kept for parity with the service)

from ledger.events import PackingEventRecorded, line_stream_id
from ledger.store import EventStore

TOPIC = "ledger.events:PackingEventRecorded"


def state_for(i: int, tenant: str, orders: int, products: int, recorded: str) -> tuple:
    order = f"o{i % orders}"
    product = f"p{(i // orders) % products}"
    second = i % 86400
    event_time = f"2024-05-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000Z"
    fields = {
        "timestamp": {"_type_": "datetime_iso", "_data_": recorded},
        "tenant": tenant, "order_id": order, "event_id": f"e{i}", "product_id": product,
        "delivery_cycle": None, "picked": i % 3, "packed": i % 4, "canceled": i % 2,
        "supplier_id": None, "unit": "H87", "event_time": event_time, "site": "main",
        "book_product": None, "user": "bench", "saas_token": None,
    }
    return order, product, orjson.dumps(fields)


def seed(url: str, n: int, tenant: str = "bench", orders: int = 20_000, products: int = 5,
         chunk: int = 200_000) -> float:
    """COPY n packing events; returns seconds taken."""
    started = time.perf_counter()
    recorded = datetime.now(UTC).isoformat()
    versions: dict[tuple[str, str], int] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for lo in range(0, n, chunk):
            with conn.transaction():
                conn.execute("LOCK TABLE stored_events IN EXCLUSIVE MODE")
                with conn.cursor().copy(
                    "COPY stored_events (originator_id, originator_version, topic, state) "
                    "FROM STDIN"
                ) as copy:
                    for i in range(lo, min(n, lo + chunk)):
                        order, product, state = state_for(i, tenant, orders, products, recorded)
                        v = versions.get((order, product), 0) + 1
                        versions[(order, product)] = v
                        copy.write_row((line_stream_id(tenant, order, product), v, TOPIC, state))
                conn.execute(
                    "INSERT INTO packing_events (tenant, event_id, content_hash, position, "
                    "order_id, product_id, event_time) "
                    "SELECT j->>'tenant', j->>'event_id', sha256(s.state), s.notification_id, "
                    "j->>'order_id', j->>'product_id', (j->>'event_time')::timestamptz "
                    "FROM stored_events s, LATERAL (SELECT convert_from(s.state, 'UTF8')::jsonb) "
                    "AS x(j) WHERE s.notification_id > coalesce((SELECT max(position) "
                    "FROM packing_events), 0)"
                )
    check(url)
    return time.perf_counter() - started


def check(url: str) -> None:
    """The seeded rows decode with the library's own mapper, as the service's do."""
    store = EventStore.from_url(url, pool_size=1)
    try:
        stored = store.recorder.select_notifications(1, 1)[0]
        event = store.mapper.to_domain_event(stored)
        assert isinstance(event, PackingEventRecorded), event
    finally:
        store.close()


if __name__ == "__main__":
    print(f"seeded in {seed(sys.argv[1], int(sys.argv[2])):.1f}s")
