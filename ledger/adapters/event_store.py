"""The event store adapter: eventsourcing's PostgreSQL recorder plus the ledger's checks.

Writes go through :meth:`EventStore.append_packing_events`, one transaction per batch:

1. take the append lock every writer takes (`sql.SERIALIZE_APPENDS`: an advisory
   lock held to commit, so commit order equals notification-id order and projections
   tailing by id never skip an event; no table maintenance waits on it or blocks it);
2. read what the store holds for the batch's eventIds and orders;
3. let the pure domain (:func:`ledger.domain.packing.decide`) judge each event;
4. insert the accepted events (encoded by the library's mapper, into the library's
   table), their index rows and each tenant's high-water mark (tenant_heads) in one
   statement.

Order commands (:meth:`EventStore.run_order_command`) take the same lock (through the
recorder subclass, whose lock the library's own inserts take too), insert through the
library's recorder itself and raise their tenant's mark.

Because every writer takes the same lock, "eventId unique per tenant" and "no event
after a cancellation" hold under any concurrency, and a bad event in a batch only
changes its own verdict.
"""

from __future__ import annotations

import binascii
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import Mapper
from eventsourcing.postgres import PostgresDatastore
from psycopg import Connection, Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, tuple_row

from ledger.adapters import sql
from ledger.adapters.compression import compress_state
from ledger.adapters.database import for_role
from ledger.adapters.encoding import PACKING_EVENT_TOPIC, make_mapper, recorded_event, stored_state
from ledger.adapters.json_columns import register as register_json_columns
from ledger.adapters.order_context import OrderContext
from ledger.adapters.pool import make_datastore
from ledger.adapters.prepared import (
    INSERT_PACKING_EVENTS,
    NOTIFY_AND_COMMIT,
    READ_FOR_DECISION,
    literal,
    prepare_append,
    prepared_connections,
)
from ledger.adapters.recorder import LedgerRecorder
from ledger.domain.events import (
    CorrectionRecorded,
    HoldingAreaAssigned,
    LedgerEvent,
    OrderCancelled,
    line_stream_key,
)
from ledger.domain.packing import Attribution, Decision, Outcome, PackingEvent, Verdict, decide

# Every process that stores or reads: json and jsonb columns come back through orjson.
register_json_columns()

log = logging.getLogger(__name__)


class EventStore:
    """Appends ledger events with their invariants (the feed's pages: feed_store.py)."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        scans: PostgresDatastore | None = None,
        compress: bool = True,
    ) -> None:
        self.datastore = datastore
        # The scanners' appends draw from a pool of their own (one writer thread needs
        # one connection), so pack-station reads and order commands, however many,
        # can never leave a scan waiting for a connection.
        self.scans = scans or datastore
        self.recorder = LedgerRecorder(datastore)
        # New states are written compressed unless told not to (PICKPACK_COMPRESS_EVENTS);
        # states of either kind are always read (ledger/adapters/compression.py).
        self.compress = compress
        self.mapper: Mapper[UUID] = make_mapper(compress)
        # Every lookup an append makes is by key, on a table that only grows. Planned
        # while the store was small (a prepared statement keeps its plan until the next
        # ANALYZE), a sequential scan looked cheaper than the index and stayed, reading
        # every recorded event once per batch: appends slowed as the store grew. No scan
        # is ever right here, so none is planned (tests/store/test_query_plans.py).
        self._begin_lock_and_read = (
            f"BEGIN; SET LOCAL lock_timeout = '{datastore.lock_timeout}s'; "
            f"SET LOCAL enable_seqscan = off; {sql.SERIALIZE_APPENDS}; "
            f"EXECUTE {READ_FOR_DECISION}("
        ).encode()
        # Called inside the append transaction for each order fact (e.g. the outbox).
        self.on_recorded: list[Callable[[Any, DomainEvent, int], None]] = []
        # Called after an order command's transaction committed facts (the change
        # feed's waiters; the scans' writer has its own, GroupCommitter.on_commit).
        self.on_committed: list[Callable[[], None]] = []
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
    def from_url(cls, url: str, compress: bool = True, **pool: Any) -> EventStore:
        return cls(
            make_datastore(for_role(url, "api"), **pool),
            make_datastore(for_role(url, "writer"), pool_size=1, max_overflow=1),
            compress,
        )

    def connection(self) -> contextlib.AbstractContextManager[Connection[DictRow]]:
        """A pooled connection (dict rows) for the services, who never see the datastore."""
        return self.datastore.get_connection()

    def transaction(self, *, commit: bool) -> contextlib.AbstractContextManager[Cursor[DictRow]]:
        """A cursor in a transaction on a pooled connection; rolled back unless `commit`."""
        return self.datastore.transaction(commit=commit)

    def pool_stats(self) -> dict[str, int]:
        """The read/command pool's counters (psycopg_pool's get_stats), for /metrics."""
        return self.datastore.pool.get_stats()

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
        recorded_at: Sequence[datetime] | None = None,
    ) -> list[Outcome]:
        """Record each event unless it is a duplicate, a conflict, or for a closed order.

        Two round trips whatever the batch size: begin, lock and read what the store
        holds for the batch; one statement that inserts the events and their index rows,
        NOTIFY (unless `notify` is false: the caller owes the runners one, see
        ledger/services/group_commit.py) and commit (`prepare_append`; a connection's first
        batch prepares them first). On `conn` (the group-commit writer
        holds one of the scans pool's connections while busy), else on one checked out
        for this batch; either way an autocommit connection (the library's pool
        configures them so), on which the transaction is begun and ended here.

        `recorded_at`: when each event was first recorded, for events brought back from
        an export (`pickpack events import`); by default, now.
        """
        if not batch:
            return []
        if conn is None:
            with self.scans.get_connection() as conn:
                return self.append_packing_events(batch, conn, notify, recorded_at)
        assert conn.autocommit, "the transaction is managed here"
        assert recorded_at is None or len(recorded_at) == len(batch)
        try:
            return self._append(batch, conn, notify, recorded_at)
        except psycopg.errors.InvalidSqlStatementName:
            # The session lost its prepared statements (a DISCARD ALL, say); nothing
            # was recorded: prepare them again and append.
            prepared_connections.discard(conn)
            return self._append(batch, conn, notify, recorded_at)

    def _append(
        self,
        batch: Sequence[tuple[PackingEvent, Attribution]],
        conn: Connection[DictRow],
        notify: bool,
        recorded_at: Sequence[datetime] | None = None,
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
                times = (
                    None
                    if recorded_at is None
                    else [
                        at
                        for d, at in zip(decisions, recorded_at, strict=True)
                        if d.verdict is Verdict.RECORD
                    ]
                )
                positions = self._record_and_commit(conn, curs, accepted, versions, notify, times)
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
        curs.execute(self._begin_lock_and_read + literal(conn, keys) + b")")
        while curs.nextset():
            pass  # to the last result, the read's (the advisory lock's SELECT has one too)
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
        times: Sequence[datetime] | None = None,
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
            if times is not None:
                now = times[i]
                recorded_at = {"_type_": "datetime_iso", "_data_": now.isoformat()}
            state = stored_state(ev, who, recorded_at)
            if state is None:
                state = self.mapper.to_stored_event(
                    recorded_event(ev, who, UUID(stream), version, now)
                ).state
            elif self.compress:
                state = compress_state(state)
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
            + literal(conn, orjson.dumps(fields))
            + b", decode('"
            + binascii.hexlify(b"".join(states))  # hex digits only: never needs escaping
            + b"', 'hex'))"
            + (NOTIFY_AND_COMMIT if notify else b"; COMMIT")
        ).fetchall()
        assert len(rows) == len(accepted)
        return {(tenant, event_id): position for tenant, event_id, position in rows}

    def run_order_command(
        self,
        tenant: str,
        order_id: str,
        decide: Callable[[OrderContext], list[LedgerEvent]],
        with_lines: bool = False,
    ) -> list[int]:
        """Fold the order under the append lock, let `decide` judge, append its facts.

        `with_lines`: fold the order's packing events too (OrderContext).

        Domain errors raised by `decide` (ledger.domain.errors.OrderError) roll back and
        propagate; nothing is recorded.
        """
        with self.datastore.transaction(commit=True) as curs:
            self.recorder.lock_table(curs)
            context = OrderContext(curs, tenant, order_id, with_lines)
            facts = decide(context)
            if not facts:
                return []
            if any((f.tenant, f.order_id) != (tenant, order_id) for f in facts):
                raise ValueError(f"a decision on order '{order_id}' returned another's facts")
            streams = [fact.stream() for fact in facts]
            versions = self.recorder.next_versions(curs, streams)
            now = DomainEvent.create_timestamp()
            events: list[LedgerEvent] = []
            for fact, stream in zip(facts, streams, strict=True):
                events.append(fact.recorded(versions[stream], now))
                versions[stream] += 1
            ids = self.recorder.insert_in_transaction(
                curs, [self.mapper.to_stored_event(e) for e in events]
            )
            for event, position in zip(events, ids, strict=True):
                # Indexed for the change feed and the order's history, in this transaction.
                curs.execute(sql.RECORD_ORDER_FACT, (tenant, position, order_id))
                if isinstance(event, OrderCancelled):
                    curs.execute(sql.CLOSE_ORDER, (tenant, order_id, position))
                elif isinstance(event, CorrectionRecorded):
                    curs.execute(
                        sql.RECORD_CORRECTION, (tenant, event.correction_id, order_id, position)
                    )
                elif isinstance(event, HoldingAreaAssigned):
                    # A number taken here came from the sequence already; one brought
                    # back from an export must never be handed out again either.
                    curs.execute(sql.KEEP_HOLDING_AREA, (tenant, event.number))
                for hook in self.on_recorded:
                    hook(curs, event, position)
            # The tenant's mark, committed with its facts (reads wait for it).
            curs.execute(sql.RAISE_TENANT_HEAD, (tenant, max(ids)))
        self._count_appended("order", len(ids))  # committed: the block has exited
        for committed in self.on_committed:
            try:
                committed()
            except Exception:  # committed already: a hook must not fail the command
                log.exception("on_committed hook failed")
        return ids

    # -- reading -----------------------------------------------------------------------

    def head(self) -> int:
        """The notification id of the newest recorded event (0 when empty)."""
        return self.recorder.max_notification_id() or 0
