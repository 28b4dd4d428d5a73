"""Seed the event store fast (COPY), in exactly the form the service writes events.

Used by the benchmarks: each row is what EventStore.append_packing_events would have
stored (same stream ids and versions, same topic, the same JSON state the library's
transcoder produces, compressed as the service stores it unless `compress=False`: `check`
decodes a row with the service's mapper), plus its packing_events index row with the
same content hash.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench.scratch import scratch_dir
from devtools.harness.support import packing_event
from ledger.adapters.compression import compress_state
from ledger.adapters.database import start_embedded
from ledger.adapters.event_store import EventStore
from ledger.adapters.migrate import migrate
from ledger.domain.events import PackingEventRecorded, line_stream_id
from ledger.domain.packing import PackingEvent

TOPIC = "ledger.events:PackingEventRecorded"


def seed_scan(i: int, tenant: str, orders: int, products: int, span: int = 0) -> PackingEvent:
    """The i-th seeded scan: each order gets every product in turn, a second apart; with
    `span`, each order gets `span` consecutive scans instead (orders local in time, as
    on a packing floor: an order's scans all fall in a few thousand positions)."""
    second = i % 86400
    order, product = (i // span, i % products) if span else (i % orders, (i // orders) % products)
    return packing_event(
        f"e{i}",
        tenant=tenant,
        order_id=f"o{order}",
        product_id=f"p{product}",
        event_time=(
            f"2024-05-01T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000Z"
        ),
        picked=i % 3,
        packed=i % 4,
        canceled=i % 2,
    )


def seed(
    url: str,
    n: int,
    tenant: str = "bench",
    orders: int = 20_000,
    products: int = 5,
    chunk: int = 200_000,
    compress: bool = True,
    local: bool = False,
) -> float:
    """COPY n packing events and their index rows; returns seconds taken.

    `local`: each of the `orders` gets its scans consecutively (n / orders of them)
    instead of every order a scan in turn (seed_scan's `span`).

    States are compressed as the service stores them by default (PICKPACK_COMPRESS_EVENTS);
    `compress=False` writes plain JSON, as the service does with it set to false.
    """
    encode = compress_state if compress else bytes
    span = max(1, n // orders) if local else 0
    started = time.perf_counter()
    recorded = {"_type_": "datetime_iso", "_data_": datetime.now(UTC).isoformat()}
    versions: dict[tuple[str, str], int] = {}
    # A line's stream id, worked out once per line: uuid5 was a third of the seeding time.
    streams: dict[tuple[str, str], Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for lo in range(0, n, chunk):
            batch = [
                seed_scan(i, tenant, orders, products, span) for i in range(lo, min(n, lo + chunk))
            ]
            with conn.transaction():
                # Ids drawn and committed in order, consecutively: EXCLUSIVE excludes the
                # writers (it conflicts with the ROW EXCLUSIVE they take with the append
                # lock); seeding runs before the service, so stalling maintenance is moot.
                conn.execute("LOCK TABLE stored_events IN EXCLUSIVE MODE")
                first = conn.execute(
                    "SELECT coalesce(max(notification_id), 0) FROM stored_events"
                ).fetchone()[0]  # type: ignore[index]
                with conn.cursor().copy(
                    "COPY stored_events (originator_id, originator_version, topic, state) "
                    "FROM STDIN"
                ) as copy:
                    for e in batch:
                        line = (e.order_id, e.product_id)
                        v = versions.get(line, 0) + 1
                        versions[line] = v
                        stream = streams.get(line)
                        if stream is None:
                            stream = streams[line] = line_stream_id(tenant, *line)
                        state = encode(
                            orjson.dumps(
                                {
                                    "timestamp": recorded,
                                    "tenant": e.tenant,
                                    "order_id": e.order_id,
                                    "event_id": e.event_id,
                                    "product_id": e.product_id,
                                    "delivery_cycle": None,
                                    "picked": e.picked,
                                    "packed": e.packed,
                                    "canceled": e.canceled,
                                    "supplier_id": None,
                                    "unit": e.unit,
                                    "event_time": e.event_time,
                                    "site": e.site,
                                    "book_product": None,
                                    "user": "bench",
                                    "saas_token": None,
                                }
                            )
                        )
                        copy.write_row((stream, v, TOPIC, state))
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT notification_id FROM stored_events WHERE notification_id > %s "
                        "ORDER BY notification_id",
                        (first,),
                    )
                ]
                assert len(ids) == len(batch)
                with conn.cursor().copy(
                    "COPY packing_events (tenant, event_id, content_hash, position, order_id, "
                    "product_id, event_time) FROM STDIN"
                ) as copy:
                    for e, pos in zip(batch, ids, strict=True):
                        copy.write_row(
                            (
                                e.tenant,
                                e.event_id,
                                e.content_hash(),
                                pos,
                                e.order_id,
                                e.product_id,
                                e.event_time,
                            )
                        )
    check(url)
    return time.perf_counter() - started


def order_document(order_id: str, entries: int) -> dict[str, Any]:
    """An order document of the spec's shape, about 150 bytes per entry."""
    return {
        "id": order_id,
        "siteCode": "main",
        "currency": "EUR",
        "customer": {"id": "c1", "firstName": "Ada", "lastName": "Lovelace"},
        "delivery": {
            "deliveryTimeModel": {"deliveryDate": "2024-05-01"},
            "deliveryWindow": {"deliveryTimeTo": "2024-05-01T12:00:00Z"},
        },
        "entries": [
            {
                "entryId": f"e{i}",
                "productId": f"p{i}",
                "productName": f"Product number {i}",
                "totalCount": 10,
                "orderUnit": "H87",
            }
            for i in range(entries)
        ],
    }


@contextmanager
def seeded_database(
    server_url: str | None, name: str, events: int, **seed_options: Any
) -> Iterator[tuple[str, float]]:
    """A fresh, migrated database `name` holding `events` seeded events: (url, seconds).

    On `server_url`, or on an embedded PostgreSQL started for the occasion (as a new
    user's machine would have) and stopped afterwards.
    """
    db = None
    if server_url is None:
        db = start_embedded(Path(scratch_dir(f"pp-{name}-")) / "pg")
        server_url = db.url
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = psycopg.conninfo.make_conninfo(server_url, dbname=name)
        migrate(url)
        seconds = seed(url, events, **seed_options)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        yield url, seconds
    finally:
        if db is not None:
            db.stop()


def check(url: str) -> None:
    """The seeded rows decode with the library's own mapper, as the service's do."""
    store = EventStore.from_url(url, pool_size=1)
    try:
        found = store.recorder.select_notifications(1, 1)
        if not found:  # an empty store (a growth benchmark's baseline)
            return
        event = store.mapper.to_domain_event(found[0])
        assert isinstance(event, PackingEventRecorded), event
    finally:
        store.close()


if __name__ == "__main__":
    print(f"seeded in {seed(sys.argv[1], int(sys.argv[2])):.1f}s")
