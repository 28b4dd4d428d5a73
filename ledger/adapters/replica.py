"""Reads that may lag: a streaming replica's connections while it answers and keeps up,
else the primary's.

PICKPACK_DATABASE_REPLICA_URL names the replica (a hot standby, or a libpq multi-host URL
with `target_session_attrs=prefer-standby`); the reads that may be a little behind the
primary (GET /events, an order's history, the change feed's full pages, exports) take
their connection here, and spare the primary their work. Each checkout asks the replica
how far behind it is, in the same round trip budget as any other
(ledger/adapters/connection.py), and uses it only when it is within
PICKPACK_DATABASE_REPLICA_MAX_LAG_SECONDS; otherwise, and whenever the replica cannot be
reached, the read goes to the primary: a replica that is down or behind costs the primary
its work back, never an answer. After a failed attempt the replica is left alone for
`RETRY_SECONDS`, so while it is down reads do not each wait for it first.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Connection

from ledger.adapters.database import for_role
from ledger.adapters.pool import database_unavailable, make_datastore

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractContextManager[Connection[Any]]]

# How long the replica is passed over after it failed to answer (a connect, the pool's
# check, the lag query or a read on it): then the next read tries it again.
RETRY_SECONDS = 5.0

# How far behind the replica is, in seconds, in one round trip; NULL when it cannot tell.
# A server not in recovery is a primary (a promoted replica, or a multi-host URL that
# found no standby): nothing to lag behind. A standby whose WAL receiver is not running
# (its primary unreachable, or it replays only from an archive) cannot know what it is
# missing: NULL. Otherwise, when all it has received is replayed, it is current as far as
# it knows (0); else the age of the last transaction it replayed.
LAG = (
    "SELECT CASE"
    " WHEN NOT pg_is_in_recovery() THEN 0::float8"
    " WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver) THEN NULL"
    " WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0::float8"
    " ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
    " END"
)


class ReplicaReads:
    """Connections for reads that may lag: the replica's, or the primary's (`primary`)."""

    def __init__(self, primary: Connect, replica: PostgresDatastore, max_lag: float) -> None:
        self._primary = primary
        self.replica = replica
        self.max_lag = max_lag
        self._lock = threading.Lock()
        self._passed_over_until = 0.0
        self._lagging = False  # the last look found it behind: logged once per episode
        # Reads by where they went: for /metrics (pickpack_replica_reads_total).
        self._counts = {"replica": 0, "lagging": 0, "unavailable": 0}

    @contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        """A connection on the replica if it answers and is within the bound, else on the
        primary. A failure on the replica inside the block propagates (the client's retry
        then reads from the primary: the replica is passed over for a while)."""
        with contextlib.ExitStack() as replica:
            conn = self._replica_connection(replica)
            if conn is not None:
                try:
                    yield conn
                except Exception as exc:
                    if database_unavailable(exc):
                        self._pass_over(exc)
                    raise
                return
        with self._primary() as conn:
            yield conn

    def _replica_connection(self, stack: contextlib.ExitStack) -> Connection[Any] | None:
        """The replica's connection, entered on `stack`, if it is to be read; else None
        (counted by why), with nothing left on `stack`."""
        with self._lock:
            seen = self._passed_over_until
        if time.monotonic() < seen:
            self._count("unavailable")
            return None
        try:
            conn: Connection[Any] = stack.enter_context(self.replica.get_connection())
            behind = _first(conn.execute(LAG).fetchone())
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            stack.close()
            self._pass_over(exc)
            self._count("unavailable")
            return None
        self._answers_again(seen)
        if behind is None or behind > self.max_lag:
            stack.close()
            self._count("lagging")
            if not self._lagging:
                self._lagging = True
                log.warning(
                    "the replica is %s: reads that may lag go to the primary until it is "
                    "within %.1f s", "not streaming" if behind is None else
                    f"{behind:.1f} s behind", self.max_lag,
                )  # fmt: skip
            return None
        if self._lagging:
            self._lagging = False
            log.info(
                "the replica is within %.1f s again: reads that may lag go to it", self.max_lag
            )
        self._count("replica")
        return conn

    @classmethod
    def from_url(cls, primary: Connect, url: str, max_lag: float) -> ReplicaReads:
        """Over a pool of the replica's own, which connects in the background: a replica
        that is down when the service starts delays nothing (reads go to the primary)."""
        return cls(primary, make_datastore(for_role(url, "replica"), wait=False), max_lag)

    def counts(self) -> dict[str, int]:
        """Reads so far: answered by the replica, and sent to the primary because the
        replica was behind (`lagging`) or did not answer (`unavailable`)."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        self.replica.close()

    def _count(self, where: str) -> None:
        with self._lock:
            self._counts[where] += 1

    def _answers_again(self, seen: float) -> None:
        """The replica answered an attempt begun when it was passed over until `seen`:
        the pass-over ends, unless another read's failure set a new one meanwhile (this
        read's answer is older than that failure, so the replica stays passed over)."""
        with self._lock:
            if not seen or self._passed_over_until != seen:
                return
            self._passed_over_until = 0.0
        log.info("the replica answers again")

    def _pass_over(self, exc: BaseException) -> None:
        with self._lock:
            first = time.monotonic() >= self._passed_over_until
            self._passed_over_until = time.monotonic() + RETRY_SECONDS
        if first:
            log.warning(
                "the replica did not answer (%s): reads that may lag go to the primary, "
                "the replica is tried again in %.0f s", exc, RETRY_SECONDS
            )  # fmt: skip


def _first(row: Any) -> float | None:
    if row is None:
        return None
    value = row[0] if isinstance(row, tuple | list) else next(iter(row.values()))
    return None if value is None else float(value)
