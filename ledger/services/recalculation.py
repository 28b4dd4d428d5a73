"""Recalculation use cases: a job queues each order's exact totals in the outbox.

Rows are only ever inserted inside a transaction that holds the event store's table
lock (the `finish` command's, or a job's), right after the totals they carry were
read. So their `seq` follows the order of those reads, and sending each order's rows
in `seq` order delivers the newest totals last, whatever crashes and retries happen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger.adapters import outbox_store
from ledger.adapters.event_store import EventStore
from ledger.adapters.order_context import OrderContext
from ledger.domain import recalculation as rc

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

    The job row keeps its orders, and this process holds the job's session lock while
    it queues them: should it die half-way, the next start finds the job incomplete and
    unlocked and finishes it (`resume_jobs`).
    """
    automatic = job_type == rc.AUTOMATIC
    with _job_lock(store, tenant, job_id) as held:
        assert held  # a new job id: nobody else can hold it
        with store.transaction(commit=True) as curs:
            if automatic:
                order_ids = outbox_store.open_orders_with_events(curs, tenant)
            candidates = rc.unique(order_ids)
            outbox_store.insert_job(curs, tenant, job_id, job_type, candidates)
        _queue_orders(store, tenant, job_id, automatic, candidates)


def resume_jobs(store: EventStore) -> int:
    """Finish every job whose process died while queueing its orders
    (docs/explanation/semantics.md, "Commands are idempotent").

    Called at start-up. A job still being queued by a live process is skipped: that
    process holds the job's lock. Returns how many jobs were resumed.
    """
    with store.transaction(commit=False) as curs:
        jobs = outbox_store.incomplete_jobs(curs)
    resumed = 0
    for tenant, job_id, job_type, order_ids in jobs:
        with _job_lock(store, tenant, job_id) as held:
            if not held:
                continue
            automatic = job_type == rc.AUTOMATIC
            if order_ids is None:  # a job recorded before jobs kept their orders
                with store.transaction(commit=False) as curs:
                    order_ids = (
                        outbox_store.open_orders_with_events(curs, tenant) if automatic else []
                    )
            _queue_orders(store, tenant, job_id, automatic, rc.unique(order_ids))
            resumed += 1
    return resumed


@contextmanager
def _job_lock(store: EventStore, tenant: str, job_id: str) -> Iterator[bool]:
    """Hold the job's session advisory lock on a connection of its own, if free."""
    key = int.from_bytes(
        hashlib.sha256(f"recalculation-job\x1f{tenant}\x1f{job_id}".encode()).digest()[:8],
        "big",
        signed=True,
    )
    with store.connection() as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s) AS held", (key,)).fetchone()
        held = bool(row["held"] if isinstance(row, dict) else row[0])  # type: ignore[index]
        if not conn.autocommit:
            conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                if not conn.autocommit:
                    conn.commit()


def _queue_orders(
    store: EventStore, tenant: str, job_id: str, automatic: bool, candidates: list[str]
) -> None:
    """Queue the job's orders not yet queued, chunk by chunk, then mark it complete."""
    for start in range(0, len(candidates), JOB_CHUNK):
        chunk = candidates[start : start + JOB_CHUNK]
        with store.transaction(commit=True) as curs:
            store.recorder.lock_table(curs)
            done = outbox_store.queued_orders(curs, tenant, job_id)
            chunk = [o for o in chunk if o not in done]
            known = outbox_store.known_entries(curs, tenant, chunk) if automatic else {}
            for order_id in chunk:
                _queue_order(curs, tenant, job_id, order_id, automatic, known)
    with store.transaction(commit=True) as curs:
        outbox_store.complete_job(curs, tenant, job_id)


def _queue_order(
    curs: Any,
    tenant: str,
    job_id: str,
    order_id: str,
    automatic: bool,
    known: dict[str, list[list[dict[str, Any]]]],
) -> None:
    """Queue one order's request (or record why not), its totals read under the lock."""
    ctx = OrderContext(curs, tenant, order_id, with_lines=True)
    queued = rc.queue_for_job(ctx.state, ctx.lines(), automatic, known.get(order_id, [None]))
    if queued is not None:
        outbox_store.queue(curs, tenant, order_id, job_id, queued)


def get_job(store: EventStore, tenant: str, job_id: str) -> dict[str, Any] | None:
    """The spec's RecalculationJob, or None when the tenant has no such job."""
    return outbox_store.get_job(store, tenant, job_id)
