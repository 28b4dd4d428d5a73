"""Recalculation use cases: a job queues each order's exact totals in the outbox.

Rows are only ever inserted inside a transaction that holds the event store's table
lock (the `finish` command's, or a job's), right after the totals they carry were
read. So their `seq` follows the order of those reads, and sending each order's rows
in `seq` order delivers the newest totals last, whatever crashes and retries happen.
"""

from __future__ import annotations

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
    """
    automatic = job_type == rc.AUTOMATIC
    with store.datastore.transaction(commit=True) as curs:
        outbox_store.insert_job(curs, tenant, job_id, job_type)
        if automatic:
            order_ids = outbox_store.open_orders_with_events(curs, tenant)
    candidates = rc.unique(order_ids)
    for start in range(0, len(candidates), JOB_CHUNK):
        chunk = candidates[start : start + JOB_CHUNK]
        with store.datastore.transaction(commit=True) as curs:
            store.recorder.lock_table(curs)
            known = outbox_store.known_entries(curs, tenant, chunk) if automatic else {}
            for order_id in chunk:
                _queue_order(curs, tenant, job_id, order_id, automatic, known)
    with store.datastore.transaction(commit=True) as curs:
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
    ctx = OrderContext(curs, tenant, order_id)
    lines, units = ctx.lines()
    queued = rc.queue_for_job(ctx.state, lines, units, automatic, known.get(order_id, [None]))
    if queued is not None:
        outbox_store.queue(curs, tenant, order_id, job_id, queued)


def get_job(store: EventStore, tenant: str, job_id: str) -> dict[str, Any] | None:
    """The spec's RecalculationJob, or None when the tenant has no such job."""
    return outbox_store.get_job(store, tenant, job_id)
