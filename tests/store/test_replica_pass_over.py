"""The replica's pass-over under concurrent reads (ledger/adapters/replica.py).

The rule (the module's docstring): after a failed attempt the replica is left alone for
RETRY_SECONDS, so while it is down reads do not each wait for it first. A read whose
lag query was answered before another read's failure must not end that pass-over.
A stand-in replica (no database) holds the first read inside its lag query while the
second fails, so the interleaving is the same on every run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ledger.adapters.replica import ReplicaReads


class _Answer:
    def fetchone(self) -> tuple[float]:
        return (0.0,)


class _HeldConnection:
    """Answers the lag query once `release` is set, after saying it was asked."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.release = threading.Event()

    def execute(self, query: str) -> _Answer:
        self.asked.set()
        assert self.release.wait(5)
        return _Answer()


class _Replica:
    """Hands out `held` first, then fails every later checkout as a replica gone down."""

    def __init__(self, held: _HeldConnection) -> None:
        self.held = held
        self.checkouts = 0

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        self.checkouts += 1
        if self.checkouts > 1:
            raise psycopg.OperationalError("connection refused")
        yield self.held


@contextmanager
def _primary() -> Iterator[Any]:
    yield "primary"


def test_a_read_answered_before_another_reads_failure_leaves_the_replica_passed_over() -> None:
    held = _HeldConnection()
    stand_in = _Replica(held)
    reads = ReplicaReads(_primary, stand_in, max_lag=5.0)  # type: ignore[arg-type]
    first: list[Any] = []

    def read_on_the_replica() -> None:
        with reads.connection() as conn:
            first.append(conn)

    before = threading.Thread(target=read_on_the_replica)
    before.start()
    assert held.asked.wait(5)  # the first read is inside its lag query
    with reads.connection() as conn:  # the replica goes down: passed over
        assert conn == "primary"
    held.release.set()
    before.join(5)
    assert first == [held]  # the replica answered the first read

    with reads.connection() as conn:
        assert conn == "primary"
    assert stand_in.checkouts == 2  # the last read did not try the replica again
    assert reads.counts() == {"replica": 1, "lagging": 0, "unavailable": 2}
