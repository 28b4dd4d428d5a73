"""Database connections that never hang: bounded connects, TCP liveness, and a client-side
deadline on every round trip.

A server can stop answering without closing anything: a frozen host, a stopped
PostgreSQL (SIGSTOP), a network partition. Its kernel may even keep acknowledging what
is sent, so TCP keepalives and the TCP user timeout (set here too, for a host that is
gone altogether) see nothing wrong, and a server-side timeout cannot fire on a server
that does not run. Only the client can tell that an answer is overdue. Every
connection the service opens is a `BoundedConnection`:

- each connection attempt is bounded (`connect_timeout`, per host of a multi-host URL,
  so a frozen first host costs one timeout and the next host is tried);
- each round trip (a statement, a COMMIT, a pool's check) is bounded by
  `round_trip_timeout`; one that overruns closes the connection, without a cancel
  request, and raises `NoAnswer` (an OperationalError: the API answers 503 with
  Retry-After, a worker reconnects). No cancel request is sent: it is one more round
  trip to the server that does not answer, and a cancelled wait for a synchronous
  standby is reported by PostgreSQL as a successful COMMIT (below);
- a write refused because the server is read-only (a demoted primary, or a standby a
  proxy still routes to) closes the connection and raises `StandbyServer` (503), so the
  pool never hands it out again;
- a COMMIT whose wait for the synchronous standby was cancelled (by anyone:
  pg_cancel_backend, a statement_timeout) is reported by PostgreSQL as a success with a
  WARNING, "the transaction has already committed locally, but might not have been
  replicated to the standby". Such a round trip raises `NotReplicated` here, so nothing
  is acknowledged that a failover could lose (docs/explanation/guarantees.md).

The bounds are process-wide (`configure`, from PICKPACK_DATABASE_CONNECT_TIMEOUT_SECONDS
and PICKPACK_DATABASE_TIMEOUT_SECONDS); a block of code may widen the round-trip bound
for its own connection (`unbounded`, for migrations that may take minutes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as e
from psycopg import pq, waiting
from psycopg.abc import PQGen
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import Row

log = logging.getLogger(__name__)

# Defaults of the process-wide bounds (docs/reference/configuration.md).
CONNECT_TIMEOUT_SECONDS = 2  # libpq's and psycopg's minimum
ROUND_TRIP_TIMEOUT_SECONDS = 5.0
# TCP keepalives: an idle connection to a host that vanished is found dead after
# idle + interval * count seconds (5 + 2 * 3 = 11 s) by the kernel.
KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
}
_WAIT_INTERVAL = 0.1  # as psycopg's Connection.wait

_SYNC_REP_CANCELLED = "synchronous replication"  # in the WARNING's message (see above)


class NoAnswer(psycopg.OperationalError):
    """The server did not answer a round trip within the client's deadline."""


class StandbyServer(psycopg.OperationalError):
    """A write reached a server in recovery (read-only): it was demoted, or a proxy has
    not noticed the failover yet. The connection is closed; the request may be retried."""


class NotReplicated(psycopg.OperationalError):
    """A COMMIT returned without its wait for the synchronous standby (it was cancelled):
    committed on this server only, and a failover may lose it. Not acknowledged."""


class _Bounds:
    connect: int = CONNECT_TIMEOUT_SECONDS
    round_trip: float | None = ROUND_TRIP_TIMEOUT_SECONDS


_bounds = _Bounds()


def configure(
    connect_timeout: float | None = None, round_trip_timeout: float | None = None
) -> None:
    """Set the process-wide bounds (None keeps the current one)."""
    if connect_timeout is not None:
        _bounds.connect = max(2, round(connect_timeout))
    if round_trip_timeout is not None:
        _bounds.round_trip = round_trip_timeout


def bounds() -> tuple[int, float | None]:
    """(connect timeout per host, round-trip deadline) now in force, in seconds."""
    return _bounds.connect, _bounds.round_trip


def with_liveness(conninfo: str) -> str:
    """`conninfo` plus a connect timeout, TCP keepalives and a TCP user timeout, each
    unless the URL sets it (an operator's value wins)."""
    params = conninfo_to_dict(conninfo)
    extra: dict[str, Any] = {}
    if "connect_timeout" not in params:
        extra["connect_timeout"] = str(_bounds.connect)
    for name, value in KEEPALIVES.items():
        if name not in params:
            extra[name] = value
    if "tcp_user_timeout" not in params and _bounds.round_trip is not None:
        # Sent data unacknowledged this long (a host gone, not merely frozen): the
        # kernel closes the connection. Milliseconds.
        extra["tcp_user_timeout"] = str(int(_bounds.round_trip * 1000))
    return make_conninfo(conninfo, **extra) if extra else conninfo


class BoundedConnection(psycopg.Connection[Row]):
    """A psycopg connection whose connects and round trips are bounded (module doc)."""

    # This connection's own round-trip bound; None: the process-wide one.
    round_trip_timeout: float | None = None
    _unbounded = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._not_replicated = False
        self.add_notice_handler(self._on_notice)

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:  # type: ignore[override]
        params = {k: v for k, v in kwargs.items() if k in _CONNINFO_KEYWORDS}
        rest = {k: v for k, v in kwargs.items() if k not in _CONNINFO_KEYWORDS}
        conninfo = with_liveness(make_conninfo(conninfo, **params))
        return super().connect(conninfo, **rest)

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if diag.severity_nonlocalized == "WARNING" and _SYNC_REP_CANCELLED in (
            diag.message_primary or ""
        ):
            self._not_replicated = True

    def wait(
        self, gen: PQGen[Any], interval: float = _WAIT_INTERVAL, timeout: float | None = None
    ) -> Any:
        if timeout is not None:  # the caller's own bound (notifies, say): psycopg's way
            return super().wait(gen, interval, timeout)
        bound = self.round_trip_timeout or _bounds.round_trip
        if self._unbounded:
            bound = None
        try:
            result = waiting.wait(gen, self.pgconn.socket, interval=interval, timeout=bound)
        except e._WaitTimeout:
            self._give_up()
            raise NoAnswer(
                f"the database did not answer within {bound:g} s (client deadline); "
                "connection closed"
            ) from None
        except e.ReadOnlySqlTransaction as exc:
            # A write reached a standby: a primary demoted under this connection, or a
            # proxy that still routes to it for a check interval. Useless for writes
            # from now on: closed, so the pool replaces it (and 503, not 500).
            self._give_up()
            raise StandbyServer(f"the database server takes no writes (a standby): {exc}") from None
        except (KeyboardInterrupt, SystemExit):
            # Stopping: no cancel request to a server that may not answer (see the doc).
            self._give_up()
            raise
        if self._not_replicated:
            self._not_replicated = False
            raise NotReplicated(
                "COMMIT returned without waiting for the synchronous standby (the wait "
                "was cancelled): the transaction may not survive a failover"
            )
        return result

    def _give_up(self) -> None:
        """Close the socket at once; the connection is broken (a pool discards it)."""
        if self.pgconn.status != pq.ConnStatus.BAD:
            self.pgconn.finish()


@contextmanager
def unbounded(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """No client deadline on `conn`'s round trips inside the block (a migration file may
    run for minutes); TCP liveness still applies, and SIGTERM still stops it."""
    if not isinstance(conn, BoundedConnection):
        yield
        return
    conn._unbounded = True
    try:
        yield
    finally:
        conn._unbounded = False


def connect(conninfo: str, **kwargs: Any) -> BoundedConnection[Any]:
    """A new bounded connection (psycopg.connect's arguments)."""
    conn: BoundedConnection[Any] = BoundedConnection.connect(conninfo, **kwargs)
    return conn


# psycopg.connect takes connection parameters as keywords too (connect_timeout=5 ...):
# those join the conninfo before the liveness defaults are added.
_CONNINFO_KEYWORDS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "connect_timeout",
        "options",
        "application_name",
        "sslmode",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
    }
)
