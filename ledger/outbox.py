"""The recalculation outbox in PostgreSQL: enqueue, jobs, claim and settle.

Rows are only ever inserted inside a transaction that holds the event store's table
lock (the `finish` command's, or a job's), right after the totals they carry were
read. So their `seq` follows the order of those reads, and sending each order's rows
in `seq` order delivers the newest totals last, whatever crashes and retries happen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.domain import DomainEvent
from psycopg.types.json import Jsonb

from ledger import recalculation as rc
from ledger.events import OrderFinished
from ledger.orders import calculation_entries
from ledger.packing import format_event_time
from ledger.status import CANCELLED
from ledger.store import EventStore, OrderContext

_INSERT = (
    "INSERT INTO recalculation_outbox (id, tenant, order_id, job_id, body, status, last_message) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def on_recorded(curs: Any, event: DomainEvent, position: int) -> None:
    """Store hook: an OrderFinished queues its calculations request in its own transaction."""
    if isinstance(event, OrderFinished):
        curs.execute(
            _INSERT,
            (
                event.recalculation_id,
                event.tenant,
                event.order_id,
                None,
                Jsonb({"entries": event.entries}),
                rc.PENDING,
                None,
            ),
        )


JOB_CHUNK = 50  # orders queued per locked transaction


def create_job(
    store: EventStore, tenant: str, job_type: str, order_ids: list[str], job_id: str
) -> None:
    """Record a job and queue one request per order with its current exact packed totals.

    Each order's totals are read under the store's write lock, in the transaction that
    queues its request, like an order command: per order, the queued rows form a
    consistent sequence (see module docstring). Orders are taken in chunks of
    JOB_CHUNK, one short transaction each, so that a job over thousands of orders does
    not hold scanners' writes up for its whole length. AUTOMATIC ignores `order_ids`
    and takes every open order whose totals changed since its last successful (or still
    queued) recalculation.
    """
    automatic = job_type == rc.AUTOMATIC
    with store.datastore.transaction(commit=True) as curs:
        curs.execute(
            "INSERT INTO recalculation_jobs (tenant, job_id, job_type) VALUES (%s, %s, %s)",
            (tenant, job_id, job_type),
        )
        if automatic:
            order_ids = [
                r["order_id"]
                for r in curs.execute(
                    "SELECT DISTINCT p.order_id FROM packing_events p WHERE p.tenant = %s "
                    "AND NOT EXISTS (SELECT 1 FROM closed_orders c "
                    "WHERE c.tenant = p.tenant AND c.order_id = p.order_id) ORDER BY 1",
                    (tenant,),
                )
            ]
    candidates = rc.unique(order_ids)
    for start in range(0, len(candidates), JOB_CHUNK):
        chunk = candidates[start : start + JOB_CHUNK]
        with store.datastore.transaction(commit=True) as curs:
            store.recorder._lock_table(curs)
            known = _known_entries(curs, tenant, chunk) if automatic else {}
            for order_id in chunk:
                _queue_order(store, curs, tenant, job_id, order_id, automatic, known)
    with store.datastore.transaction(commit=True) as curs:
        # Lock the job first (as `settle` does): a dispatcher settling its last row
        # commits before the next statement looks, or waits and then sees `complete`.
        curs.execute(
            "SELECT 1 FROM recalculation_jobs WHERE tenant = %s AND job_id = %s FOR UPDATE",
            (tenant, job_id),
        )
        curs.execute(
            "UPDATE recalculation_jobs j SET complete = true, finished_at = CASE WHEN "
            "EXISTS (SELECT 1 FROM recalculation_outbox o WHERE o.tenant = j.tenant "
            "AND o.job_id = j.job_id AND o.status = 'PENDING') THEN NULL ELSE now() END "
            "WHERE j.tenant = %s AND j.job_id = %s",
            (tenant, job_id),
        )


def _queue_order(
    store: EventStore,
    curs: Any,
    tenant: str,
    job_id: str,
    order_id: str,
    automatic: bool,
    known: dict[str, list[list[dict[str, Any]]]],
) -> None:
    """Queue one order's request (or record why not), its totals read under the lock."""
    ctx = OrderContext(store, curs, tenant, order_id)
    lines, units = ctx.lines()
    body: dict[str, Any] | None = None
    status, message = rc.PENDING, None
    if ctx.state.status == CANCELLED:
        status, message = rc.FAILURE, f"order '{order_id}' is CANCELLED"
    elif not ctx.state.registered and not lines:
        status, message = rc.FAILURE, f"order '{order_id}' is unknown to the ledger"
    else:
        entries = calculation_entries(ctx.state, lines, units)
        if automatic and not any(
            rc.needs_recalculation(entries, seen) for seen in known.get(order_id, [None])
        ):
            return
        body = {"entries": entries}
    curs.execute(
        _INSERT,
        (
            uuid.uuid4().hex,
            tenant,
            order_id,
            job_id,
            Jsonb(body) if body is not None else None,
            status,
            message,
        ),
    )


def _known_entries(
    curs: Any, tenant: str, order_ids: list[str]
) -> dict[str, list[list[dict[str, Any]]]]:
    """Per order: the entries last delivered, and those of every request still queued."""
    known: dict[str, list[list[dict[str, Any]]]] = {}
    for r in curs.execute(
        "SELECT order_id, entries FROM recalculation_sent "
        "WHERE tenant = %s AND order_id = ANY(%s) "
        "UNION ALL SELECT order_id, body -> 'entries' FROM recalculation_outbox "
        "WHERE tenant = %s AND order_id = ANY(%s) AND status = 'PENDING' AND body IS NOT NULL",
        (tenant, order_ids, tenant, order_ids),
    ):
        known.setdefault(r["order_id"], []).append(r["entries"])
    return known


def get_job(store: EventStore, tenant: str, job_id: str) -> dict[str, Any] | None:
    """The spec's RecalculationJob, or None when the tenant has no such job."""
    with store.datastore.get_connection() as conn, conn.cursor() as curs:
        # Rows first: the transaction that settles a job's last row also sets finished_at,
        # so reading the job after its rows never shows them done and it unfinished.
        rows = curs.execute(
            "SELECT order_id, status, last_message FROM recalculation_outbox "
            "WHERE tenant = %s AND job_id = %s ORDER BY seq",
            (tenant, job_id),
        ).fetchall()
        job = curs.execute(
            "SELECT job_id, job_type, started_at, complete, finished_at FROM recalculation_jobs "
            "WHERE tenant = %s AND job_id = %s",
            (tenant, job_id),
        ).fetchone()
        if job is None:
            return None
    orders = [
        {
            "orderId": r["order_id"],
            "jobOrderStatus": r["status"],
            "message": r["last_message"] or _default_message(r["status"]),
        }
        for r in rows
    ]
    finished: datetime | None = job["finished_at"]
    body = {
        "id": job["job_id"],
        "jobType": job["job_type"],
        "orders": orders,
        # Still queueing its orders: in progress whatever the rows queued so far say.
        "jobStatus": rc.job_status(o["jobOrderStatus"] for o in orders)
        if job["complete"]
        else rc.IN_PROGRESS,
        "startedAt": format_event_time(job["started_at"]),
    }
    if finished is not None:
        # Left out until then: the spec types finishedAt as a date-time, not nullable.
        body["finishedAt"] = format_event_time(finished)
    return body


def _default_message(status: str) -> str:
    return rc.SUCCESS_MESSAGE if status == rc.SUCCESS else "Waiting to be sent to the Order Service"


# -- the dispatcher's side ---------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    id: str
    tenant: str
    order_id: str
    job_id: str | None
    body: dict[str, Any]
    attempts: int


CLAIM = (
    "SELECT id, tenant, order_id, job_id, body, attempts FROM recalculation_outbox o "
    "WHERE status = 'PENDING' AND body IS NOT NULL AND next_attempt_at <= now() "
    "AND NOT EXISTS (SELECT 1 FROM recalculation_outbox e WHERE e.tenant = o.tenant "
    "AND e.order_id = o.order_id AND e.status = 'PENDING' AND e.seq < o.seq) "
    "ORDER BY next_attempt_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED"
)


def claim(curs: Any) -> OutboxRow | None:
    """Lock the next due row, the oldest pending one of its order, skipping rows others hold.

    The lock lasts for the caller's transaction: while one dispatcher sends a row, no
    other process can take it or any later row of the same order.
    """
    r = curs.execute(CLAIM).fetchone()
    if r is None:
        return None
    return OutboxRow(r["id"], r["tenant"], r["order_id"], r["job_id"], r["body"], r["attempts"])


def settle(curs: Any, row: OutboxRow, outcome: rc.Next, message: str, delay: float) -> None:
    """Write one attempt's outcome; on success remember the totals the Order Service holds."""
    attempts = row.attempts + 1
    if outcome is rc.Next.RETRY:
        curs.execute(
            "UPDATE recalculation_outbox SET attempts = %s, last_message = %s, "
            "next_attempt_at = now() + make_interval(secs => %s), updated_at = now() "
            "WHERE id = %s",
            (attempts, message, delay, row.id),
        )
        return
    status = rc.SUCCESS if outcome is rc.Next.DONE else rc.FAILURE
    curs.execute(
        "UPDATE recalculation_outbox SET attempts = %s, last_message = %s, status = %s, "
        "updated_at = now() WHERE id = %s",
        (attempts, message, status, row.id),
    )
    if status == rc.SUCCESS:
        curs.execute(
            "INSERT INTO recalculation_sent (tenant, order_id, entries, outbox_id) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, order_id) DO UPDATE SET "
            "entries = EXCLUDED.entries, outbox_id = EXCLUDED.outbox_id, sent_at = now()",
            (row.tenant, row.order_id, Jsonb(row.body.get("entries") or []), row.id),
        )
    if row.job_id is not None:
        # Lock the job first so two dispatchers settling its last rows see each other.
        curs.execute(
            "SELECT 1 FROM recalculation_jobs WHERE tenant = %s AND job_id = %s FOR UPDATE",
            (row.tenant, row.job_id),
        )
        curs.execute(
            "UPDATE recalculation_jobs j SET finished_at = now() "
            "WHERE j.tenant = %s AND j.job_id = %s AND j.complete AND j.finished_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM recalculation_outbox o WHERE o.tenant = j.tenant "
            "AND o.job_id = j.job_id AND o.status = 'PENDING')",
            (row.tenant, row.job_id),
        )
