"""Reading the views: a pooled connection once they have applied the tenant's newest event.

The read side's one entry point for the API and the read use cases. The queries
themselves are in projections/read.py; this module adds read-your-writes per tenant
(look, then wait without holding a connection) and counts the reads whose wait timed out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from psycopg import Connection

from projections.read import Freshness, look, order_entries, wait_for_mark

Connect = Callable[[], AbstractContextManager[Connection[Any]]]


class ViewReader:
    """Read-your-writes reads of the views over `connect`'s pooled connections."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._stale_reads = 0
        self._stale_lock = threading.Lock()

    @contextmanager
    def read(self, tenant: str, views: Sequence[str]) -> Iterator[tuple[Any, Freshness]]:
        """A pooled autocommit connection (dict rows) for the read side, once `views`
        have applied `tenant`'s latest recorded event, and how fresh they are.

        Read-your-writes per tenant (projections/read.py): other tenants' events are
        not waited for. The wait is bounded and holds no connection; one that times
        out is counted (`stale_reads`, exposed at /metrics) and its Freshness says how
        far behind the views were. When the views are there already, the usual case,
        the look and the reads share one checkout (each checkout costs a round trip:
        the pool checks the connection).
        """
        with self._connect() as conn:
            found = look(conn, tenant, views)
            if isinstance(found, Freshness):
                yield conn, found
        if isinstance(found, Freshness):
            return
        freshness = self._counted(wait_for_mark(self._connect, tenant, found, views))
        with self._connect() as conn:
            yield conn, freshness

    def order_entries(
        self, tenant: str, pairs: set[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], Freshness | None]:
        """Registered order entries for (order, product) pairs, for packedAmountInPc,
        and how fresh the view they came from was (None: nothing was looked up)."""
        if not pairs:
            return {}, None
        with self.read(tenant, ("order_status",)) as (conn, freshness):
            return order_entries(conn, tenant, pairs), freshness

    def _counted(self, freshness: Freshness) -> Freshness:
        if freshness.stale:
            with self._stale_lock:
                self._stale_reads += 1
        return freshness

    @property
    def stale_reads(self) -> int:
        """Reads answered from views behind their tenant's mark (the wait timed out)."""
        with self._stale_lock:
            return self._stale_reads
