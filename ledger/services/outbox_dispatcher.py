"""The outbox dispatcher: a thread in `serve` that delivers queued calculations requests.

Each row is claimed with FOR UPDATE SKIP LOCKED and sent while its lock is held, in
one transaction with the write of its outcome. A crash mid-send rolls the claim back
and the row is sent again later (at-least-once; the amounts are absolute, so that is
safe). Any number of processes may run a dispatcher against the same database.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

import psycopg
from psycopg.rows import DictRow, dict_row

from ledger.adapters import connection, outbox_store
from ledger.adapters.database import for_role
from ledger.adapters.order_service import OrderServiceClient
from ledger.domain.recalculation import Next, RetryPolicy

log = logging.getLogger(__name__)


class OutboxDispatcher:
    """Polls for due rows and sends them, one transaction per row."""

    def __init__(
        self,
        database_url: str,
        client: OrderServiceClient,
        policy: RetryPolicy,
        poll_seconds: float = 0.5,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.database_url = database_url
        self.client = client
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.rand = rand
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-dispatcher", daemon=True)

    def start(self) -> OutboxDispatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the request in flight (bounded by the client's timeouts), then exit."""
        self._stop.set()
        self._thread.join(timeout=60)
        self.client.close()

    def _run(self) -> None:
        conn: psycopg.Connection[DictRow] | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connection.connect(
                        for_role(self.database_url, "outbox"), row_factory=dict_row
                    )
                if not self.dispatch_one(conn):
                    self._stop.wait(self.poll_seconds)
            except psycopg.Error as exc:
                log.warning("outbox dispatcher: database error, retrying: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(max(self.poll_seconds, 1.0))
            except Exception:
                log.exception("outbox dispatcher: unexpected error")
                self._stop.wait(max(self.poll_seconds, 1.0))
        if conn is not None:
            conn.close()

    def dispatch_one(self, conn: psycopg.Connection[DictRow]) -> bool:
        """Send the next due row, if any; True when one was handled."""
        with conn.transaction(), conn.cursor() as curs:
            row = outbox_store.claim(curs)
            if row is None:
                return False
            answer = self.client.calculate(row.tenant, row.order_id, row.body)
            attempts = row.attempts + 1
            outcome = self.policy.judge(attempts, answer)
            delay = self.policy.delay(attempts, self.rand()) if outcome is Next.RETRY else 0.0
            if outcome is not Next.DONE:
                log.info(
                    "recalculation %s of %s/%s: %s (attempt %d)",
                    row.id,
                    row.tenant,
                    row.order_id,
                    answer.message,
                    attempts,
                )
            outbox_store.settle(curs, row, outcome, answer.message, delay, answer.status)
        return True
