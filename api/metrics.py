"""Prometheus metrics at GET /metrics (prometheus-client).

Per request (from api.observability.RequestObserver): requests by route template, method
and status, and the ingest latency histogram. Everything that needs the database is
computed when Prometheus scrapes, by :class:`LedgerCollector`, never per request:

- events appended since the process started (counted by the event store after commit),
  and the group-commit transactions that carried them (their ratio is the batch size);
- order reads answered stale (their read-your-writes wait timed out);
- projection lag per projection: the store's head notification id minus the position
  the projection has tracked;
- recalculation outbox rows PENDING and FAILURE;
- database pool connections in use (psycopg_pool's ``get_stats()``).

Each app has its own registry (tests run several apps in one process). With
``serve --workers N`` each worker process has its own counters;
docs/reference/metrics-and-logs.md says to scale by replicas of one worker each instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api import http_guard
from api.observability import ABANDONED
from ledger.adapters import connection
from ledger.adapters.database import for_role

log = logging.getLogger(__name__)

INGEST_ROUTE = "/pick-pack/{tenant}/events"
# Group commit answers after a commit: from a fraction of a millisecond alone to tens of
# milliseconds under load or behind a slow fsync.
INGEST_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# One round trip for the gauges: head, tracked positions, outbox counts.
_SCRAPE = r"""
SELECT 'head' AS k, coalesce(max(notification_id), 0) AS v FROM stored_events
UNION ALL
SELECT 'track:' || application_name, notification_id FROM notification_tracking
  WHERE application_name = ANY(%s)
UNION ALL
SELECT 'partitioned_to', max((regexp_match(pg_get_expr(c.relpartbound, c.oid),
                              'TO \(''?(-?\d+)''?\)'))[1]::bigint)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = to_regclass('stored_events')
UNION ALL
SELECT 'outbox:PENDING', count(*) FROM recalculation_outbox WHERE status = 'PENDING'
UNION ALL
SELECT 'outbox:FAILURE', count(*) FROM recalculation_outbox WHERE status = 'FAILURE'
"""
# (One count per status: each reads its own partial index, where `status IN (...)`
# matched neither and scanned the whole outbox.)


class Metrics:
    """The app's registry and the per-request instruments."""

    def __init__(self, runtime: Callable[[], Any]) -> None:
        from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "pickpack_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "pickpack_ingest_duration_seconds",
            "Latency of POST /pick-pack/{tenant}/events, from request to answer "
            "(the answer is sent after the event's transaction committed).",
            buckets=INGEST_BUCKETS,
            registry=self.registry,
        )
        self.abandoned = Counter(
            "pickpack_http_requests_abandoned",
            "Requests whose client had gone away before the answer was ready (also "
            "counted in pickpack_http_requests with status 499): a client timed out, "
            "typically while the database was slow or failing over.",
            ["route", "method"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(LedgerCollector(runtime))
        # (route, method, status) -> (counter child, histogram or None): labels() is
        # resolved once per combination, not per request.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            ingest = route == INGEST_ROUTE and method == "POST"
            child = (
                self.requests.labels(route, method, str(status)),
                self.ingest_seconds if ingest else None,
            )
            self._children[key] = child
        counter, histogram = child
        counter.inc()
        if status == ABANDONED:
            self.abandoned.labels(route, method).inc()
        if histogram is not None:
            histogram.observe(seconds)

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


class LedgerCollector(Collector):
    """Gauges read at scrape time from the runtime and its database."""

    def __init__(self, runtime: Callable[[], Any]) -> None:
        self._runtime = runtime

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        from projections.registry import PROJECTIONS

        rt = self._runtime()
        if rt is None:
            return
        appended = CounterMetricFamily(
            "pickpack_events_appended",
            "Events appended to the event store by this process, by stream kind "
            "(packing: scanners' events; order: order facts).",
            labels=["kind"],
        )
        for kind, count in rt.store.appended_counts().items():
            appended.add_metric([kind], count)
        yield appended
        refused = CounterMetricFamily(
            "pickpack_http_refused",
            "Connections the HTTP guard closed before the app answered them, by reason: "
            "header_too_large (431), header_timeout (408 or closed), body_timeout (408), "
            "evicted (idle, to make room), over_capacity (503) (api/http_guard.py).",
            labels=["reason"],
        )
        for reason in http_guard.REASONS:
            refused.add_metric([reason], http_guard.REFUSED[reason])
        yield refused
        committer = rt.committer
        yield CounterMetricFamily(
            "pickpack_stale_reads",
            "Order reads (order, packlist, order cycles, the feed's order lookup) answered "
            "from views that had not reached the tenant's latest write when the wait "
            "timed out; each such answer carries X-Pickpack-Stale.",
            value=rt.views.stale_reads + rt.lagging_views.stale_reads,
        )
        if rt.replica is not None:
            replica = CounterMetricFamily(
                "pickpack_replica_reads",
                "Reads that may lag (GET /events, history, the change feed's catch-up) by "
                "where they went: replica (answered there), lagging (the primary: the "
                "replica was further behind than PICKPACK_DATABASE_REPLICA_MAX_LAG_SECONDS "
                "or could not tell), unavailable (the primary: the replica did not answer).",
                labels=["outcome"],
            )
            for outcome, count in rt.replica.counts().items():
                replica.add_metric([outcome], count)
            yield replica
        yield CounterMetricFamily(
            "pickpack_append_transactions",
            "Group-commit transactions that recorded scanners' events: events appended "
            "(kind packing) divided by this is the mean batch size.",
            value=committer.batches,
        )

        stats = rt.store.pool_stats()
        size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
        yield GaugeMetricFamily(
            "pickpack_db_pool_in_use",
            "Connections of the event store's pool checked out right now.",
            value=max(size - available, 0),
        )
        yield GaugeMetricFamily(
            "pickpack_db_pool_size", "Connections the pool holds open.", value=size
        )
        yield GaugeMetricFamily(
            "pickpack_db_pool_max", "The most connections the pool may open.",
            value=stats.get("pool_max", 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "pickpack_db_pool_requests_waiting",
            "Requests waiting for a pool connection right now.",
            value=stats.get("requests_waiting", 0),
        )

        up = GaugeMetricFamily(
            "pickpack_database_up",
            "1 if this scrape could read the database gauges below, else 0.",
        )
        names = list(PROJECTIONS)
        try:
            with connection.connect(
                for_role(rt.database.url, "metrics"),
                connect_timeout=2,
                options="-c statement_timeout=2000",
            ) as conn:
                rows: dict[str, Any] = dict(conn.execute(_SCRAPE, (names,)).fetchall())
        except psycopg.Error as exc:
            log.warning("metrics: database gauges unavailable: %s", str(exc).strip())
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        head = int(rows.get("head") or 0)
        yield GaugeMetricFamily(
            "pickpack_event_store_head", "The newest notification id in the store.", value=head
        )
        if rows.get("partitioned_to") is not None:
            # Appends fail once the head reaches the last partition's bound: the service
            # keeps two partitions ahead (ledger/adapters/partitions.py); alert well before.
            yield GaugeMetricFamily(
                "pickpack_event_store_partition_headroom_positions",
                "Positions the store's partitions can still take beyond the head "
                "(the last partition's upper bound minus the head).",
                value=max(int(rows["partitioned_to"]) - 1 - head, 0),
            )
        lag = GaugeMetricFamily(
            "pickpack_projection_lag_events",
            "Events recorded that the projection has not applied yet "
            "(store head minus the projection's tracked position).",
            labels=["projection"],
        )
        for name in names:
            lag.add_metric([name], max(head - int(rows.get(f"track:{name}") or 0), 0))
        yield lag
        outbox = GaugeMetricFamily(
            "pickpack_outbox_requests",
            "Recalculation requests in the outbox, by status (PENDING: waiting to be "
            "delivered; FAILURE: gave up).",
            labels=["status"],
        )
        outbox.add_metric(["pending"], int(rows.get("outbox:PENDING") or 0))
        outbox.add_metric(["failed"], int(rows.get("outbox:FAILURE") or 0))
        yield outbox


router = APIRouter(tags=["Operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (unauthenticated, for the internal network)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    # A sync handler: the scrape's database read runs in the thread pool, off the loop.
    body = request.app.state.metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
