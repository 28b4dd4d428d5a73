"""The database pools: the library's datastore over a psycopg pool built for outages,
and the classification of database errors (unavailable: answer 503, the client retries).
"""

from __future__ import annotations

import psycopg
from eventsourcing import persistence as es_persistence
from eventsourcing.postgres import ConnectionPool, PostgresDatastore
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg_pool import PoolTimeout

from ledger.adapters.connection import BoundedConnection, bounds

# How long a request waits for a pooled connection. A healthy pool hands one out at once;
# waiting this long means the database is unreachable, and the request then answers 503
# quickly instead of hanging (docs/RELIABILITY.md).
CHECKOUT_TIMEOUT_SECONDS = 1.0
# How long one chain of reconnection attempts lasts (psycopg_pool retries after ~1 s, then
# doubles). The library default, 5 minutes, let the delays grow to 8 s, 16 s, ... during a
# long outage, so the pool came back many seconds after the database did. Short chains
# give up instead, and the next request starts a fresh attempt at once.
RECONNECT_TIMEOUT_SECONDS = 1.0
# How long building a datastore waits for the pool's first connection.
OPEN_TIMEOUT_SECONDS = 10.0
# A pooled connection's check (an empty query) on checkout: a server that takes longer
# to answer it is taken as gone (frozen, or behind a partition), and every idle
# connection is replaced (_CheckOrDrain).
CHECK_TIMEOUT_SECONDS = 2.0


def make_datastore(
    url: str, pool_size: int = 8, max_overflow: int = 8, wait: bool = True
) -> PostgresDatastore:
    """The library's datastore, over a psycopg pool built to fail fast and recover fast.

    `wait`: wait for the pool's first connection (raising if none comes); a pool that
    may start while its server is down (a replica's: reads go to the primary
    meanwhile) connects in the background instead.
    """
    params = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(params.get("dbname", "postgres")),
        host=str(params.get("host", "localhost")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "postgres")),
        password=str(params.get("password", "")),
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_timeout=CHECKOUT_TIMEOUT_SECONDS,  # the library passes it as the pool timeout
        lock_timeout=10,
    )
    # The library builds its pool unopened; replace it with one whose connection checks,
    # reconnection and timeouts suit an outage, same connection settings otherwise.
    library_pool = datastore.pool
    library_kwargs = library_pool.kwargs
    assert isinstance(library_kwargs, dict)  # the library passes a plain dict
    # The URL's other parameters (sslmode, application_name, options ...) were dropped
    # by the library's five named ones: pass them on.
    others = {k: v for k, v in params.items() if k not in library_kwargs}
    connect_timeout = params.get("connect_timeout") or bounds()[0]
    check = _CheckOrDrain()
    datastore.pool = check.pool = ConnectionPool(
        # Every connect and round trip bounded (ledger/adapters/connection.py): a frozen
        # server costs a request a 503, never a hang.
        connection_class=BoundedConnection[DictRow],
        kwargs={**others, **library_kwargs, "connect_timeout": connect_timeout},
        min_size=library_pool.min_size,
        max_size=library_pool.max_size,
        open=False,
        configure=datastore.after_connect_func(),
        check=check,
        timeout=CHECKOUT_TIMEOUT_SECONDS,
        max_lifetime=library_pool.max_lifetime,
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
    )
    # The first connection is waited for longer than a request's checkout: the library
    # checks one out as the store is built, and behind a multi-host URL whose first host
    # is frozen each connection costs a connect timeout before the next host answers.
    datastore.pool.open()
    if wait:
        with datastore.pool.connection(timeout=OPEN_TIMEOUT_SECONDS):
            pass
    return datastore


class _CheckOrDrain:
    """Check each connection as it leaves the pool; on a dead one, drop every idle one.

    After a database restart every pooled connection is dead. Checking them one by one
    on checkout would sleep the pool's backoff (1 s, 2 s, 4 s ...) between them, which is
    how a restart used to cost ~10 s; one dead connection is taken as news that the
    server went away, and the idle ones are replaced (or retried) together.
    """

    pool: ConnectionPool[Connection[DictRow]] | None = None

    def __call__(self, conn: Connection[DictRow]) -> None:
        bounded = conn if isinstance(conn, BoundedConnection) else None
        if bounded is not None:
            bounded.round_trip_timeout = CHECK_TIMEOUT_SECONDS
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            if self.pool is not None:
                self.pool.drain()
            raise
        finally:
            if bounded is not None:
                bounded.round_trip_timeout = None


# "The database cannot serve now, retry later" rather than "this request is wrong":
# connection refused or lost, no pooled connection in time, a lock or statement timeout.
# psycopg's OperationalError and InterfaceError families, and the library's wrappers.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database is unavailable (answer 503; the client retries)."""
    return isinstance(exc, UNAVAILABLE_ERRORS)


def pool_exhausted(exc: BaseException) -> bool:
    """No connection could be had within the checkout timeout (raised or wrapped)."""
    return isinstance(exc, PoolTimeout) or isinstance(exc.__cause__, PoolTimeout)
