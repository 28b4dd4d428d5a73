"""The event store adapter: eventsourcing's PostgreSQL recorder plus the ledger's checks.

Writes go through :meth:`EventStore.append_packing_events`, one transaction per batch:

1. take the EXCLUSIVE lock on the library's stored_events table (the lock its own
   recorder takes, so commit order equals notification-id order and projections
   tailing by id never skip an event);
2. read what the store holds for the batch's eventIds and orders;
3. let the pure domain (:func:`ledger.packing.decide`) judge each event;
4. insert the accepted events (encoded by the library's mapper, into the library's
   table) and their index rows in one statement.

Order commands (:meth:`EventStore.run_order_command`) take the same lock and insert
through the library's recorder itself.

Because every writer takes the same lock, "eventId unique per tenant" and "no event
after a cancellation" hold under any concurrency, and a bad event in a batch only
changes its own verdict.
"""

from __future__ import annotations

import binascii
import contextlib
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg
from eventsourcing import persistence as es_persistence
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Mapper, Transcoder
from eventsourcing.postgres import ConnectionPool, PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Escaping, TransactionStatus
from psycopg.rows import DictRow, tuple_row
from psycopg_pool import PoolTimeout

from ledger.database import for_role
from ledger.events import (
    OrderCancelled,
    PackingEventRecorded,
    line_stream_key,
    order_stream_id,
)
from ledger.json_columns import register as register_json_columns
from ledger.orders import Fact
from ledger.packing import Decision, PackingEvent, Verdict, decide
from ledger.status import OrderState, apply, kind_of
from ledger.transcoder import OrjsonTranscoder

# Every process that stores or reads: json and jsonb columns come back through orjson.
register_json_columns()


def make_transcoder() -> Transcoder:
    """The library's JSON format with its UUID, Decimal and datetime transcodings."""
    return OrjsonTranscoder()


# How long a request waits for a pooled connection. A healthy pool hands one out at once;
# waiting this long means the database is unreachable, and the request then answers 503
# quickly instead of hanging (docs/RELIABILITY.md).
CHECKOUT_TIMEOUT_SECONDS = 1.0
# How long one chain of reconnection attempts lasts (psycopg_pool retries after ~1 s, then
# doubles). The library default, 5 minutes, let the delays grow to 8 s, 16 s, ... during a
# long outage, so the pool came back many seconds after the database did. Short chains
# give up instead, and the next request starts a fresh attempt at once.
RECONNECT_TIMEOUT_SECONDS = 1.0
# A connection attempt to a host that does not answer must not hang a pool worker.
CONNECT_TIMEOUT_SECONDS = 3


def make_datastore(url: str, pool_size: int = 8, max_overflow: int = 8) -> PostgresDatastore:
    """The library's datastore, over a psycopg pool built to fail fast and recover fast."""
    params = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(params.get("dbname", "postgres")),
        host=str(params.get("host", "localhost")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "postgres")),
        password=str(params.get("password", "")),
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_timeout=CHECKOUT_TIMEOUT_SECONDS,  # the library passes it as the pool timeout
        lock_timeout=10,
    )
    # The library builds its pool unopened; replace it with one whose connection checks,
    # reconnection and timeouts suit an outage, same connection settings otherwise.
    library_pool = datastore.pool
    library_kwargs = library_pool.kwargs
    assert isinstance(library_kwargs, dict)  # the library passes a plain dict
    # The URL's other parameters (sslmode, application_name, options ...) were dropped
    # by the library's five named ones: pass them on.
    others = {k: v for k, v in params.items() if k not in library_kwargs}
    check = _CheckOrDrain()
    datastore.pool = check.pool = ConnectionPool(
        connection_class=Connection[DictRow],
        kwargs={**others, **library_kwargs, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
        min_size=library_pool.min_size,
        max_size=library_pool.max_size,
        open=False,
        configure=datastore.after_connect_func(),
        check=check,
        timeout=CHECKOUT_TIMEOUT_SECONDS,
        max_lifetime=library_pool.max_lifetime,
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
    )
    return datastore


class _CheckOrDrain:
    """Check each connection as it leaves the pool; on a dead one, drop every idle one.

    After a database restart every pooled connection is dead. Checking them one by one
    on checkout would sleep the pool's backoff (1 s, 2 s, 4 s ...) between them, which is
    how a restart used to cost ~10 s; one dead connection is taken as news that the
    server went away, and the idle ones are replaced (or retried) together.
    """

    pool: ConnectionPool[Connection[DictRow]] | None = None

    def __call__(self, conn: Connection[DictRow]) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            if self.pool is not None:
                self.pool.drain()
            raise


# "The database cannot serve now, retry later" rather than "this request is wrong":
# connection refused or lost, no pooled connection in time, a lock or statement timeout.
# psycopg's OperationalError and InterfaceError families, and the library's wrappers.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database is unavailable (answer 503; the client retries)."""
    return isinstance(exc, UNAVAILABLE_ERRORS)


def pool_exhausted(exc: BaseException) -> bool:
    """No connection could be had within the checkout timeout (raised or wrapped)."""
    return isinstance(exc, PoolTimeout) or isinstance(exc.__cause__, PoolTimeout)


@dataclass(frozen=True)
class Outcome:
    """What happened to one submitted packing event."""

    event: PackingEvent
    verdict: Verdict
    position: int | None  # notification id when recorded now or before


@dataclass(frozen=True)
class Attribution:
    """Who sent a packing event: the token's subject and the request's saas-token."""

    user: str | None = None
    saas_token: str | None = None


# Everything the decision needs: which eventIds the tenant already has (with their
# content hash), which orders are closed, each line stream's version. The batch's keys
# arrive as one JSON document ({"e": [[tenant, eventId]...], "o": [[tenant, order]...],
# "s": [stream...]}): one orjson call instead of five arrays dumped element by element in
# Python (docs/BENCHMARKS.md). Each key is looked up on its index (LATERAL ... OFFSET 0
# keeps the lookup a nested index probe): as a plain join, a store whose statistics lag
# behind its growth (any fresh one) was hash-joined against a sequential scan of every
# recorded event, once per batch. The probe names only the eventId, which leads the
# primary key and no other index, and the tenant is checked outside it, so no plan made
# while the store was small can probe another index (migrations/0006_key_lookups.sql).
# Prepared by name on each writer connection (`prepare_append`).
_READ_FOR_DECISION = """
WITH batch AS MATERIALIZED (SELECT $1::json AS j)
SELECT 'e' AS kind, k.t AS tenant, k.e AS ref, p.content_hash, p.position AS n
FROM (SELECT DISTINCT x->>0, x->>1 FROM batch, json_array_elements(j->'e') x) AS k(t, e),
LATERAL (SELECT tenant, content_hash, position FROM packing_events
         WHERE event_id = k.e OFFSET 0) p
WHERE p.tenant = k.t
UNION ALL
SELECT 'c', k.t, k.o, NULL, NULL
FROM (SELECT DISTINCT x->>0, x->>1 FROM batch, json_array_elements(j->'o') x) AS k(t, o)
WHERE EXISTS (SELECT FROM closed_orders WHERE tenant = k.t AND order_id = k.o OFFSET 0)
UNION ALL
SELECT 'v', NULL, s.id, NULL,
       (SELECT max(originator_version) FROM stored_events WHERE originator_id = s.id::uuid)
FROM batch, json_array_elements_text(j->'s') AS s(id)
"""

# The events (the library's table and columns) and their index rows in one statement;
# index rows join on (stream, version), so positions can never be mismatched. Each
# event's fields arrive as one object of a JSON array, read by json_to_recordset in one
# pass (an accessor per field would parse each element again); the stored states (the
# library's bytes, unchanged) arrive as one bytea, each event naming where its own
# starts and its size. Events are inserted in batch order. Prepared by name, like the
# read.
_INSERT_PACKING_EVENTS = """
WITH k AS MATERIALIZED (
    SELECT r.i, r.stream, r.version, r.topic, substring($2 FROM r.at FOR r.size) AS state,
           r.tenant, r.event_id, decode(r.content_hash, 'hex') AS content_hash,
           r.order_id, r.product_id, r.event_time
    FROM json_to_recordset($1::json) AS r(
        i int, stream uuid, version bigint, topic text, at int, size int, tenant text,
        event_id text, content_hash text, order_id text, product_id text,
        event_time timestamptz)
), new_events AS (
    INSERT INTO stored_events (originator_id, originator_version, topic, state)
    SELECT stream, version, topic, state FROM k ORDER BY i
    RETURNING originator_id, originator_version, notification_id
), indexed AS (
    INSERT INTO packing_events
        (tenant, event_id, content_hash, position, order_id, product_id, event_time)
    SELECT k.tenant, k.event_id, k.content_hash, e.notification_id, k.order_id,
           k.product_id, k.event_time
    FROM k
    JOIN new_events e ON e.originator_id = k.stream AND e.originator_version = k.version
    RETURNING tenant, event_id, position
)
SELECT tenant, event_id, position FROM indexed
"""


_BEGINNING = datetime(1, 1, 1, tzinfo=UTC)

PACKING_EVENT_TOPIC = get_topic(PackingEventRecorded)


def recorded_event(
    event: PackingEvent, who: Attribution, stream: UUID, version: int, timestamp: datetime
) -> PackingEventRecorded:
    """The domain event that records an accepted scan in its line's stream."""
    return PackingEventRecorded(
        originator_id=stream,
        originator_version=version,
        timestamp=timestamp,
        tenant=event.tenant,
        order_id=event.order_id,
        event_id=event.event_id,
        product_id=event.product_id,
        delivery_cycle=event.delivery_cycle,
        picked=event.picked,
        packed=event.packed,
        canceled=event.canceled,
        supplier_id=event.supplier_id,
        unit=event.unit,
        event_time=event.event_time,
        site=event.site,
        book_product=event.book_product,
        user=who.user,
        saas_token=who.saas_token,
    )


def stored_state(
    event: PackingEvent, who: Attribution, recorded_at: dict[str, str]
) -> bytes | None:
    """The stored state of :func:`recorded_event`'s event, as the library's mapper writes it.

    Straight from the scan: the mapper builds the domain event, copies its attributes
    and checks each value's type first, about a fifth of the append's Python time per
    batch (`python bench/append.py`, docs/BENCHMARKS.md). `recorded_at` is the timestamp in the
    library's datetime transcoding. tests/test_transcoder.py holds the two byte for
    byte equal. None if orjson cannot write a value (an integer beyond 64 bits): the
    mapper then decides, as it would have.
    """
    try:
        return orjson.dumps(
            {
                "timestamp": recorded_at,
                "tenant": event.tenant,
                "order_id": event.order_id,
                "event_id": event.event_id,
                "product_id": event.product_id,
                "delivery_cycle": event.delivery_cycle,
                "picked": event.picked,
                "packed": event.packed,
                "canceled": event.canceled,
                "supplier_id": event.supplier_id,
                "unit": event.unit,
                "event_time": event.event_time,
                "site": event.site,
                "book_product": event.book_product,
                "user": who.user,
                "saas_token": who.saas_token,
            }
        )
    except orjson.JSONEncodeError:
        return None


# The channel the library's recorder notifies (its table's name), and runners listen on.
NOTIFY_CHANNEL = "stored_events"

READ_FOR_DECISION = "pickpack_read_for_decision"
INSERT_PACKING_EVENTS = "pickpack_insert_packing_events"
_APPEND_STATEMENTS = {
    READ_FOR_DECISION: f"PREPARE {READ_FOR_DECISION}(json) AS {_READ_FOR_DECISION}",
    INSERT_PACKING_EVENTS: f"PREPARE {INSERT_PACKING_EVENTS}(json, bytea) AS "
    + _INSERT_PACKING_EVENTS,
}
# Connections whose session holds the append's prepared statements.
_prepared: weakref.WeakSet[Connection[Any]] = weakref.WeakSet()


def prepare_append(conn: Connection[Any]) -> None:
    """Prepare the append's read and insert in `conn`'s session, unless they are there.

    Named SQL prepared statements, run with EXECUTE, keep their plans as psycopg's own
    do, yet can share one simple-protocol message with other statements: BEGIN, the
    lock and the read travel together, then the insert and COMMIT, two round trips per
    batch rather than four. Each round trip wakes the writer and its backend on a
    core they share with the HTTP server, and the fewer there are the less of that
    core they take (docs/BENCHMARKS.md, fifth session). The session's client encoding
    is set to UTF8, the encoding of the JSON documents sent as literals.
    """
    if conn in _prepared:
        return
    with conn.cursor(row_factory=tuple_row) as curs:
        curs.execute(
            "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)",
            (list(_APPEND_STATEMENTS),),
        )
        have = {str(name) for (name,) in curs.fetchall()}
    missing = [sql for name, sql in _APPEND_STATEMENTS.items() if name not in have]
    conn.execute("; ".join(["SET client_encoding = 'UTF8'", *missing]))
    _prepared.add(conn)


_NOTIFY_AND_COMMIT = f"; NOTIFY {NOTIFY_CHANNEL}; COMMIT".encode()


def notify_runners(conn: Connection[Any]) -> None:
    """Wake the projection runners listening in any process (see ProjectionRunner)."""
    conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def _literal(conn: Connection[Any], data: bytes) -> bytes:
    """`data` as an SQL string literal, quoted by libpq for this connection."""
    return Escaping(conn.pgconn).escape_literal(data)


class EventStore:
    """Appends ledger events with their invariants, and reads them back."""

    def __init__(
        self, datastore: PostgresDatastore, scans: PostgresDatastore | None = None
    ) -> None:
        self.datastore = datastore
        # The scanners' appends draw from a pool of their own (one writer thread needs
        # one connection), so pack-station reads and order commands, however many,
        # can never leave a scan waiting for a connection.
        self.scans = scans or datastore
        self.recorder = PostgresApplicationRecorder(datastore)
        self.mapper: Mapper[UUID] = Mapper(transcoder=make_transcoder())
        # Every lookup an append makes is by key, on a table that only grows. Planned
        # while the store was small (a prepared statement keeps its plan until the next
        # ANALYZE), a sequential scan looked cheaper than the index and stayed, reading
        # every recorded event once per batch: appends slowed as the store grew. No scan
        # is ever right here, so none is planned (tests/test_query_plans.py).
        self._begin_lock_and_read = (
            f"BEGIN; SET LOCAL lock_timeout = '{datastore.lock_timeout}s'; "
            "SET LOCAL enable_seqscan = off; LOCK TABLE stored_events IN EXCLUSIVE MODE; "
            f"EXECUTE {READ_FOR_DECISION}("
        ).encode()
        # Called inside the append transaction for each order fact (e.g. the outbox).
        self.on_recorded: list[Callable[[Any, DomainEvent, int], None]] = []
        # Events this process appended (committed), by stream kind: for /metrics.
        self._appended = {"packing": 0, "order": 0}
        self._appended_lock = threading.Lock()

    def appended_counts(self) -> dict[str, int]:
        """Events committed by this store object so far, by kind (packing, order)."""
        with self._appended_lock:
            return dict(self._appended)

    def _count_appended(self, kind: str, n: int) -> None:
        if n:
            with self._appended_lock:
                self._appended[kind] += n

    @classmethod
    def from_url(cls, url: str, **pool: Any) -> EventStore:
        return cls(
            make_datastore(for_role(url, "api"), **pool),
            make_datastore(for_role(url, "writer"), pool_size=1, max_overflow=1),
        )

    def close(self) -> None:
        if self.scans is not self.datastore:
            self.scans.close()
        self.datastore.close()

    # -- writing -----------------------------------------------------------------------

    def append_packing_events(
        self,
        batch: Sequence[tuple[PackingEvent, Attribution]],
        conn: Connection[DictRow] | None = None,
        notify: bool = True,
    ) -> list[Outcome]:
        """Record each event unless it is a duplicate, a conflict, or for a closed order.

        Two round trips whatever the batch size: begin, lock and read what the store
        holds for the batch; one statement that inserts the events and their index rows,
        NOTIFY (unless `notify` is false: the caller owes the runners one, see
        ledger/group_commit.py) and commit (`prepare_append`; a connection's first
        batch prepares them first). On `conn` (the group-commit writer
        holds one of the scans pool's connections while busy), else on one checked out
        for this batch; either way an autocommit connection (the library's pool
        configures them so), on which the transaction is begun and ended here.
        """
        if not batch:
            return []
        if conn is None:
            with self.scans.get_connection() as conn:
                return self.append_packing_events(batch, conn, notify)
        assert conn.autocommit, "the transaction is managed here"
        try:
            return self._append(batch, conn, notify)
        except psycopg.errors.InvalidSqlStatementName:
            # The session lost its prepared statements (a DISCARD ALL, say); nothing
            # was recorded: prepare them again and append.
            _prepared.discard(conn)
            return self._append(batch, conn, notify)

    def _append(
        self,
        batch: Sequence[tuple[PackingEvent, Attribution]],
        conn: Connection[DictRow],
        notify: bool,
    ) -> list[Outcome]:
        prepare_append(conn)
        events = [ev for ev, _ in batch]
        hashes = [e.content_hash() for e in events]
        streams = [line_stream_key(e.tenant, e.order_id, e.product_id) for e in events]
        # The transaction by hand, in two round trips: BEGIN, the lock and the read travel
        # as one message, the insert and COMMIT as another; rows as tuples.
        with conn.cursor(row_factory=tuple_row) as curs:
            try:
                recorded, closed, versions = self._lock_and_read(conn, curs, events, streams)
                decisions = decide(
                    events, {k: v[0] for k, v in recorded.items()}, closed, hashes=hashes
                )
                accepted = [
                    (d, attribution, digest, stream)
                    for d, (_, attribution), digest, stream in zip(
                        decisions, batch, hashes, streams, strict=True
                    )
                    if d.verdict is Verdict.RECORD
                ]
                positions = self._record_and_commit(conn, curs, accepted, versions, notify)
            except BaseException:
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(Exception):
                        conn.execute("ROLLBACK")
                raise
        self._count_appended("packing", len(positions))  # committed
        outcomes = []
        for d in decisions:
            key = (d.event.tenant, d.event.event_id)
            position = positions.get(key) or (recorded[key][1] if key in recorded else None)
            outcomes.append(Outcome(d.event, d.verdict, position))
        return outcomes

    def _lock_and_read(
        self, conn: Connection[DictRow], curs: Any, events: list[PackingEvent], streams: list[str]
    ) -> tuple[dict[tuple[str, str], tuple[bytes, int]], set[tuple[str, str]], dict[str, int]]:
        """Begin, lock, and read recorded eventIds, closed orders and stream versions."""
        recorded: dict[tuple[str, str], tuple[bytes, int]] = {}
        closed: set[tuple[str, str]] = set()
        versions: dict[str, int] = {}
        keys = orjson.dumps(
            {
                "e": [(e.tenant, e.event_id) for e in events],
                "o": [(e.tenant, e.order_id) for e in events],
                "s": list(set(streams)),
            }
        )
        curs.execute(self._begin_lock_and_read + _literal(conn, keys) + b")")
        while curs.description is None and curs.nextset():
            pass  # past BEGIN, SET and LOCK to the read's rows
        for kind, tenant, ref, content_hash, n in curs.fetchall():
            if kind == "e":
                recorded[(tenant, ref)] = (bytes(content_hash), n)
            elif kind == "c":
                closed.add((tenant, ref))
            elif n is not None:
                versions[ref] = n
        return recorded, closed, versions

    def _record_and_commit(
        self,
        conn: Connection[DictRow],
        curs: Any,
        accepted: list[tuple[Decision, Attribution, bytes, str]],
        versions: dict[str, int],
        notify: bool,
    ) -> dict[tuple[str, str], int]:
        if not accepted:
            curs.execute("COMMIT")
            return {}
        now = DomainEvent.create_timestamp()
        recorded_at = {"_type_": "datetime_iso", "_data_": now.isoformat()}
        fields = []
        states = []
        at = 1  # where the event's state starts in the batch's states, counted from 1
        for i, (d, who, digest, stream) in enumerate(accepted):
            ev = d.event
            version = versions.get(stream, 0) + 1
            versions[stream] = version
            state = stored_state(ev, who, recorded_at)
            if state is None:
                state = self.mapper.to_stored_event(
                    recorded_event(ev, who, UUID(stream), version, now)
                ).state
            states.append(state)
            fields.append(
                {
                    "i": i,
                    "stream": stream,
                    "version": version,
                    "topic": PACKING_EVENT_TOPIC,
                    "at": at,
                    "size": len(state),
                    "tenant": ev.tenant,
                    "event_id": ev.event_id,
                    "content_hash": digest.hex(),
                    "order_id": ev.order_id,
                    "product_id": ev.product_id,
                    "event_time": ev.event_time,
                }
            )
            at += len(state)
        rows = curs.execute(
            b"EXECUTE "
            + INSERT_PACKING_EVENTS.encode()
            + b"("
            + _literal(conn, orjson.dumps(fields))
            + b", decode('"
            + binascii.hexlify(b"".join(states))  # hex digits only: never needs escaping
            + b"', 'hex'))"
            + (_NOTIFY_AND_COMMIT if notify else b"; COMMIT")
        ).fetchall()
        assert len(rows) == len(accepted)
        return {(tenant, event_id): position for tenant, event_id, position in rows}

    def _next_versions(self, curs: Any, streams: list[UUID]) -> dict[UUID, int]:
        """Next version of each stream; the table lock makes this read race-free."""
        found = {
            r["originator_id"]: r["v"]
            for r in curs.execute(
                "SELECT originator_id, max(originator_version) AS v FROM stored_events "
                "WHERE originator_id = ANY(%s) GROUP BY originator_id",
                (list(set(streams)),),
            )
        }
        return {s: found.get(s, 0) + 1 for s in streams}

    def _insert(self, curs: Any, domain_events: Sequence[DomainEvent]) -> list[int]:
        """Insert through the library's recorder (lock, NOTIFY, unnest insert)."""
        stored = [self.mapper.to_stored_event(e) for e in domain_events]
        self.recorder._insert_stored_events(curs, stored)
        ids = self.recorder._fetch_ids_after_insert_events(curs, stored)
        assert ids is not None and len(ids) == len(stored)
        return list(ids)

    def run_order_command(
        self, tenant: str, order_id: str, decide: Callable[[OrderContext], list[Fact]]
    ) -> list[int]:
        """Fold the order under the write lock, let `decide` judge, append its facts.

        Domain errors raised by `decide` (ledger.orders.OrderError) roll back and
        propagate; nothing is recorded.
        """
        with self.datastore.transaction(commit=True) as curs:
            self.recorder._lock_table(curs)
            context = OrderContext(self, curs, tenant, order_id)
            facts = decide(context)
            if not facts:
                return []
            stream = order_stream_id(tenant, order_id)
            version = self._next_versions(curs, [stream])[stream]
            now = DomainEvent.create_timestamp()
            events: list[DomainEvent] = []
            for i, fact in enumerate(facts):
                events.append(
                    fact.cls(  # type: ignore[call-arg]
                        originator_id=stream,
                        originator_version=version + i,
                        timestamp=now,
                        tenant=tenant,
                        order_id=order_id,
                        **fact.fields,
                    )
                )
            ids = self._insert(curs, events)
            for event, position in zip(events, ids, strict=True):
                if isinstance(event, OrderCancelled):
                    curs.execute(
                        "INSERT INTO closed_orders (tenant, order_id, position) "
                        "VALUES (%s, %s, %s)",
                        (tenant, order_id, position),
                    )
                for hook in self.on_recorded:
                    hook(curs, event, position)
        self._count_appended("order", len(ids))  # committed: the block has exited
        return ids

    # -- reading -----------------------------------------------------------------------

    def head(self) -> int:
        """The notification id of the newest recorded event (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def events_after(
        self, tenant: str, after: datetime | None, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        """A page of a tenant's packing events, strictly after `after`, by (time, position).

        The page is chosen on the feed index alone (tenant, event_time, position): the
        `timestamp` filter is a keyset start on that index, and an offset skips index
        entries only. Just the page's rows are then looked up by key (a LATERAL lookup:
        a plain join tempted the planner into scanning the whole store), and PostgreSQL
        returns their states as one JSON array, so a 20,000-event page costs one value
        and one decode rather than 20,000 rows (docs/BENCHMARKS.md).
        """
        with self.datastore.get_connection() as conn, conn.cursor(binary=True) as curs:
            row = curs.execute(_FEED_PAGE, (tenant, after or _BEGINNING, offset, limit)).fetchone()
        blob = row["page"] if row else None
        return orjson.loads(blob) if blob else []


_FEED_PAGE = (
    "WITH page AS MATERIALIZED ("
    " SELECT position, event_time FROM packing_events WHERE tenant = %s AND event_time > %s"
    " ORDER BY event_time, position OFFSET %s LIMIT %s) "
    "SELECT '['::bytea || string_agg(s.state, ','::bytea ORDER BY page.event_time, page.position)"
    " || ']'::bytea AS page "
    "FROM page, LATERAL (SELECT state FROM stored_events"
    " WHERE notification_id = page.position OFFSET 0) s"  # OFFSET 0: keep it a lookup
)


class OrderContext:
    """What an order decision may look at, read inside the locked transaction."""

    def __init__(self, store: EventStore, curs: Any, tenant: str, order_id: str) -> None:
        self._curs = curs
        self.tenant = tenant
        self.order_id = order_id
        self.state = OrderState(tenant=tenant, order_id=order_id)
        for row in curs.execute(
            "SELECT topic, state FROM stored_events WHERE originator_id = %s "
            "ORDER BY originator_version",
            (order_stream_id(tenant, order_id),),
        ):
            apply(self.state, kind_of(row["topic"]), orjson.loads(bytes(row["state"])))

    def lines(self) -> tuple[dict[str, list[int]], dict[str, str]]:
        """Exact [packed, canceled] per product and the last unit, from the line streams."""
        lines: dict[str, list[int]] = {}
        units: dict[str, str] = {}
        for row in self._curs.execute(
            "SELECT s.state FROM packing_events p "
            "JOIN stored_events s ON s.notification_id = p.position "
            "WHERE p.tenant = %s AND p.order_id = %s ORDER BY p.position",
            (self.tenant, self.order_id),
        ):
            d = orjson.loads(bytes(row["state"]))
            line = lines.setdefault(d["product_id"], [0, 0])
            line[0] += d["packed"]
            line[1] += d["canceled"]
            units[d["product_id"]] = d["unit"]
        return lines, units

    def next_holding_area(self) -> int:
        """Take the tenant's next holding area number (never handed out again)."""
        row = self._curs.execute(
            "INSERT INTO holding_area_sequences (tenant, last_number) VALUES (%s, 1) "
            "ON CONFLICT (tenant) DO UPDATE "
            "SET last_number = holding_area_sequences.last_number + 1 "
            "RETURNING last_number",
            (self.tenant,),
        ).fetchone()
        return int(row["last_number"])
