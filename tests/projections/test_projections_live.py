"""Projections follow the store live: totals and packing state, read straight after writes."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from devtools.harness.service import EXAMPLE_EVENT, Service
from devtools.harness.support import packing_event, wait_until
from ledger.domain import orders
from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner


def wait_caught_up(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            head = conn.execute("SELECT coalesce(max(notification_id),0) FROM stored_events")
            h = head.fetchone()[0]  # type: ignore[index]
            row = conn.execute(
                "SELECT count(*), min(notification_id) FROM notification_tracking "
                "WHERE application_name IN ('line_totals', 'order_status')"
            ).fetchone()
            assert row is not None
            if h == 0 or (row[0] == 2 and row[1] >= h):
                return
            time.sleep(0.02)
    raise AssertionError("projections did not catch up")


def ev(**kw: Any) -> dict[str, Any]:
    return {**EXAMPLE_EVENT, **kw}


ORDER = {
    "id": "o1",
    "siteCode": "main",
    "entries": [
        {"entryId": "e1", "productId": "p1", "totalCount": 2, "orderUnit": "H87"},
        {"entryId": "e2", "productId": "p2", "totalCount": 1, "orderUnit": "H87"},
    ],
}


def test_line_totals_sum_the_packing_events(service: Service) -> None:
    service.post_event(
        ev(
            eventId="a",
            orderNumber="o1",
            productId="p1",
            pickedAmount=2,
            packedAmount=1,
            canceledAmount=0,
        )
    )
    service.post_event(
        ev(
            eventId="b",
            orderNumber="o1",
            productId="p1",
            pickedAmount=0,
            packedAmount=1,
            canceledAmount=1,
            timestamp="2020-09-14T13:40:00Z",
        )
    )
    wait_caught_up(service.runtime.database.url)
    with psycopg.connect(service.runtime.database.url) as conn:
        row = conn.execute(
            "SELECT picked, packed, canceled, events, first_event_at < last_event_at "
            "FROM line_totals WHERE tenant='demo' AND order_id='o1' AND product_id='p1'"
        ).fetchone()
    assert row == (2, 2, 1, 2, True)


def test_order_status_moves_from_initial_to_pre_packed(service: Service) -> None:
    store = service.runtime.store
    store.run_order_command("demo", "o1", lambda c: orders.register(c.state, ORDER))
    url = service.runtime.database.url

    def status() -> str:
        wait_caught_up(url)
        with psycopg.connect(url) as conn:
            r = conn.execute("SELECT packing_status FROM order_status WHERE order_id='o1'")
            return str(r.fetchone()[0])  # type: ignore[index]

    assert status() == "INITIAL"
    service.post_event(ev(eventId="1", orderNumber="o1", productId="p1", packedAmount=2))
    assert status() == "IN_PROGRESS"
    service.post_event(
        ev(eventId="2", orderNumber="o1", productId="p2", packedAmount=0, canceledAmount=1)
    )
    assert status() == "PRE_PACKED"


def _append(url: str, start: int, n: int) -> list[Any]:
    from ledger.adapters.event_store import EventStore
    from ledger.domain.packing import Attribution

    evs = [
        packing_event(f"k{i}", product_id=f"p{i % 3}", packed=1) for i in range(start, start + n)
    ]
    store = EventStore.from_url(url, pool_size=1)
    try:
        store.append_packing_events([(e, Attribution()) for e in evs])
    finally:
        store.close()
    return evs


def _packed(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(sum(packed), 0) FROM line_totals").fetchone()
    return int(row[0])  # type: ignore[index]


def test_two_runners_never_double_count_and_the_second_takes_over(db_url: str) -> None:
    from projections.line_totals import LineTotals
    from projections.runner import ProjectionRunner

    first = ProjectionRunner(db_url, LineTotals(), batch_size=7, poll_interval=0.05).start()
    second = ProjectionRunner(db_url, LineTotals(), batch_size=7, poll_interval=0.05).start()
    try:
        _append(db_url, 0, 300)
        wait_until(lambda: _packed(db_url) == 300)
        first.stop()  # the first process dies; the second carries on alone
        _append(db_url, 300, 100)
        wait_until(lambda: _packed(db_url) == 400)
        time.sleep(0.3)
        assert _packed(db_url) == 400
    finally:
        first.stop()
        second.stop()


def test_a_killed_listen_connection_does_not_stall_the_projection(db_url: str) -> None:
    from projections.line_totals import LineTotals
    from projections.runner import ProjectionRunner

    runner = ProjectionRunner(db_url, LineTotals(), poll_interval=0.2).start()
    try:
        _append(db_url, 0, 10)
        wait_until(lambda: _packed(db_url) == 10)
        with psycopg.connect(db_url, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
            ).fetchone()
        assert killed and killed[0] >= 1
        _append(db_url, 10, 5)
        wait_until(lambda: _packed(db_url) == 15)
    finally:
        runner.stop()


def test_a_step_that_fails_unexpectedly_is_retried_and_the_runner_lives_on(
    db_url: str,
) -> None:
    """A bug or an event the views cannot take must not kill the runner's thread."""
    from projections.line_totals import LineTotals, LineTotalsAccumulator
    from projections.runner import ProjectionRunner

    class FailsTwice(LineTotals):
        failed = 0

        def accumulator(self, suffix: str = "") -> LineTotalsAccumulator:
            if FailsTwice.failed < 2:
                FailsTwice.failed += 1
                raise RuntimeError("a projection bug")
            return super().accumulator(suffix)

    runner = ProjectionRunner(
        db_url, FailsTwice(), poll_interval=0.05, max_failure_backoff=0.2
    ).start()
    try:
        _append(db_url, 0, 20)
        wait_until(lambda: _packed(db_url) == 20)
        assert runner.failures == 2
        _append(db_url, 20, 5)  # and it keeps following the store afterwards
        wait_until(lambda: _packed(db_url) == 25)
    finally:
        runner.stop()


def test_the_pause_between_steps_grows_with_the_step_and_is_bounded() -> None:
    """A trickle keeps the views milliseconds behind; heavy ingest buys CPU with a longer
    pause, never more than the ceiling (bench/lag.py measures the lag it buys)."""
    runner = ProjectionRunner("postgresql://unused", list(PROJECTIONS.values()))
    assert runner.pause_after(1) < 0.006  # 500 events/s: steps of a few events
    assert runner.pause_after(1) < runner.pause_after(100) < runner.pause_after(400)
    assert runner.pause_after(999) == runner.max_coalesce == 0.1
