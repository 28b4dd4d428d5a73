"""The recalculation outbox's tables: enqueue, read a job, claim and settle.

Rows are only ever inserted inside a transaction that holds the event store's table
lock (the `finish` command's, or a job's), right after the totals they carry were
read. So their `seq` follows the order of those reads, and sending each order's rows
in `seq` order delivers the newest totals last, whatever crashes and retries happen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import DomainEvent
from psycopg.types.json import Jsonb

from ledger.adapters.event_store import EventStore
from ledger.domain import recalculation as rc
from ledger.domain.events import OrderFinished

INSERT = (
    "INSERT INTO recalculation_outbox (id, tenant, order_id, job_id, body, status, last_message) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def on_recorded(curs: Any, event: DomainEvent, position: int) -> None:
    """Store hook: an OrderFinished queues its calculations request in its own transaction."""
    # An empty recalculation id: a finish whose totals equal the last one's (semantics.md,
    # "Commands are idempotent").
    if isinstance(event, OrderFinished) and event.recalculation_id:
        curs.execute(
            INSERT,
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


def known_entries(
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
    return rc.job_body(job, rows)


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


def settle(
    curs: Any,
    row: OutboxRow,
    outcome: rc.Next,
    message: str,
    delay: float,
    status_code: int | None = None,
) -> None:
    """Write one attempt's outcome (with the HTTP status the Order Service answered, for
    the order's history); on success remember the totals the Order Service holds."""
    attempts = row.attempts + 1
    if outcome is rc.Next.RETRY:
        curs.execute(
            "UPDATE recalculation_outbox SET attempts = %s, last_message = %s, "
            "last_status_code = %s, "
            "next_attempt_at = now() + make_interval(secs => %s), updated_at = now() "
            "WHERE id = %s",
            (attempts, message, status_code, delay, row.id),
        )
        return
    status = rc.SUCCESS if outcome is rc.Next.DONE else rc.FAILURE
    curs.execute(
        "UPDATE recalculation_outbox SET attempts = %s, last_message = %s, status = %s, "
        "last_status_code = %s, updated_at = now() WHERE id = %s",
        (attempts, message, status, status_code, row.id),
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


def queue(curs: Any, tenant: str, order_id: str, job_id: str | None, queued: rc.Queued) -> None:
    """Insert one request (or a FAILURE with its reason) for an order of a job."""
    curs.execute(
        INSERT,
        (
            uuid.uuid4().hex,
            tenant,
            order_id,
            job_id,
            Jsonb(queued.body) if queued.body is not None else None,
            queued.status,
            queued.message,
        ),
    )


def insert_job(curs: Any, tenant: str, job_id: str, job_type: str, order_ids: list[str]) -> None:
    curs.execute(
        "INSERT INTO recalculation_jobs (tenant, job_id, job_type, order_ids) "
        "VALUES (%s, %s, %s, %s)",
        (tenant, job_id, job_type, Jsonb(order_ids)),
    )


def queued_orders(curs: Any, tenant: str, job_id: str) -> set[str]:
    """The orders a job has queued (or recorded a FAILURE for) so far."""
    return {
        r["order_id"]
        for r in curs.execute(
            "SELECT order_id FROM recalculation_outbox WHERE tenant = %s AND job_id = %s",
            (tenant, job_id),
        )
    }


def incomplete_jobs(curs: Any) -> list[tuple[str, str, str, list[str] | None]]:
    """(tenant, job_id, job_type, order_ids) of every job not fully queued."""
    return [
        (r["tenant"], r["job_id"], r["job_type"], r["order_ids"])
        for r in curs.execute(
            "SELECT tenant, job_id, job_type, order_ids FROM recalculation_jobs "
            "WHERE NOT complete ORDER BY started_at"
        )
    ]


def open_orders_with_events(curs: Any, tenant: str) -> list[str]:
    """Every open order of the tenant with packing events or corrections (an AUTOMATIC
    job's candidates: a correction alone changes packed totals too)."""
    return [
        r["order_id"]
        for r in curs.execute(
            "SELECT o.order_id FROM ("
            "SELECT p.order_id FROM packing_events p WHERE p.tenant = %s "
            "UNION SELECT c.order_id FROM corrections c WHERE c.tenant = %s"
            ") AS o WHERE NOT EXISTS (SELECT 1 FROM closed_orders c "
            "WHERE c.tenant = %s AND c.order_id = o.order_id) ORDER BY 1",
            (tenant, tenant, tenant),
        )
    ]


def complete_job(curs: Any, tenant: str, job_id: str) -> None:
    """Mark a job fully queued; finished now if nothing of it is pending."""
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
