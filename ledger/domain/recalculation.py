"""Recalculation rules: when to retry a calculations request, and a job's status. No I/O.

The Order Service receives absolute packed totals, so sending the same request twice
is harmless: delivery is at-least-once and every doubtful outcome (5xx, timeout,
refused connection) is retried with exponential backoff and jitter, up to a bound.
A 4xx means the Order Service judged the request itself: retrying cannot help.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ledger.domain.counting import Lines
from ledger.domain.orders import calculation_entries
from ledger.domain.packing import format_event_time
from ledger.domain.status import CANCELLED, OrderState

PENDING, SUCCESS, FAILURE = "PENDING", "SUCCESS", "FAILURE"
IN_PROGRESS = "IN_PROGRESS"
MANUAL, AUTOMATIC = "MANUAL", "AUTOMATIC"
JOB_TYPES = (MANUAL, AUTOMATIC)
SUCCESS_MESSAGE = "Order recalculated successfully"
RETRYABLE_4XX = frozenset({408, 425, 429})


class Next(Enum):
    """What to do with an outbox row after one delivery attempt."""

    DONE = "done"  # SUCCESS
    RETRY = "retry"  # stay PENDING, try again after a delay
    GIVE_UP = "give_up"  # FAILURE


@dataclass(frozen=True)
class Answer:
    """The outcome of one attempt: the HTTP status, or None when nothing came back."""

    status: int | None
    message: str


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in delay and in attempts."""

    base_seconds: float = 1.0
    factor: float = 2.0
    max_delay_seconds: float = 300.0
    max_attempts: int = 10
    jitter: float = 0.5  # the delay is scaled by a factor in [1 - jitter, 1]

    def judge(self, attempts: int, answer: Answer) -> Next:
        """`attempts` counts this one. 2xx done; 4xx (but 408/425/429) final; else retry."""
        status = answer.status
        if status is not None and 200 <= status < 300:
            return Next.DONE
        if status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
            return Next.GIVE_UP
        return Next.RETRY if attempts < self.max_attempts else Next.GIVE_UP

    def delay(self, attempts: int, rand: float) -> float:
        """Seconds before the next try after `attempts` failed ones; rand is in [0, 1)."""
        raw = self.base_seconds * self.factor ** max(attempts - 1, 0)
        capped = min(raw, self.max_delay_seconds)
        return capped * (1 - self.jitter * rand)


def job_status(statuses: Iterable[str]) -> str:
    """IN_PROGRESS while any order is PENDING; then FAILURE if any failed, else SUCCESS."""
    seen = set(statuses)
    if PENDING in seen:
        return IN_PROGRESS
    return FAILURE if FAILURE in seen else SUCCESS


def needs_recalculation(
    current: Sequence[dict[str, Any]], last_sent: Sequence[dict[str, Any]] | None
) -> bool:
    """Whether the packed totals changed since the last successful recalculation.

    Before any recalculation the Order Service holds nothing delivered, so an order
    needs one as soon as something is packed.
    """
    if last_sent is None:
        return any(int(e.get("deliveredAmount") or 0) > 0 for e in current)
    return list(current) != list(last_sent)


def unique(order_ids: Iterable[str]) -> list[str]:
    """The order ids once each, in the order given (the spec's example repeats one)."""
    return list(dict.fromkeys(order_ids))


def new_job_id() -> str:
    """16 characters of [A-Za-z0-9_-], as the spec's jobId parameter allows."""
    return secrets.token_urlsafe(12)[:16]


def error_message(status: int | None, body: str) -> str:
    """The Order Service's own message from an error answer, else its text, shortened."""
    import json

    text = body.strip()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "detailInfo", "error"):
            if isinstance(parsed.get(key), str) and parsed[key]:
                text = parsed[key]
                break
    prefix = f"Order Service answered {status}" if status is not None else "Order Service"
    return f"{prefix}: {text[:500]}" if text else prefix


@dataclass(frozen=True)
class Queued:
    """What a job queues for one order: a request body to send, or a FAILURE and why."""

    status: str
    message: str | None
    body: dict[str, Any] | None


def queue_for_job(
    state: OrderState,
    lines: Lines,
    automatic: bool,
    known: Sequence[list[dict[str, Any]] | None] = (None,),
) -> Queued | None:
    """A job's decision for one order, from its state and exact line totals.

    A cancelled order, or one the ledger has never heard of, is recorded as a FAILURE
    with the reason (the job's answer lists it). An AUTOMATIC job skips (None) an order
    whose totals equal those last delivered or already queued (`known`).
    """
    order_id = state.order_id
    if state.status == CANCELLED:
        return Queued(FAILURE, f"order '{order_id}' is CANCELLED", None)
    if not state.registered and not lines:
        return Queued(FAILURE, f"order '{order_id}' is unknown to the ledger", None)
    entries = calculation_entries(state, lines)
    if automatic and not any(needs_recalculation(entries, seen) for seen in known):
        return None
    return Queued(PENDING, None, {"entries": entries})


def default_message(status: str) -> str:
    return SUCCESS_MESSAGE if status == SUCCESS else "Waiting to be sent to the Order Service"


def job_body(job: dict[str, Any], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The spec's RecalculationJob from a job's row and its outbox rows (in queue order)."""
    orders = [
        {
            "orderId": r["order_id"],
            "jobOrderStatus": r["status"],
            "message": r["last_message"] or default_message(r["status"]),
        }
        for r in rows
    ]
    finished = job["finished_at"]
    body = {
        "id": job["job_id"],
        "jobType": job["job_type"],
        "orders": orders,
        # Still queueing its orders: in progress whatever the rows queued so far say.
        "jobStatus": job_status(o["jobOrderStatus"] for o in orders)
        if job["complete"]
        else IN_PROGRESS,
        "startedAt": format_event_time(job["started_at"]),
    }
    if finished is not None:
        # Left out until then: the spec types finishedAt as a date-time, not nullable.
        body["finishedAt"] = format_event_time(finished)
    return body
