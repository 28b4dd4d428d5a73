"""Connections that never hang and never acknowledge too early (ledger/adapters/connection.py).

The rules: docs/explanation/guarantees.md ("No request hangs", "No 200 that a failover
could lose").
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devtools.harness.faults import OwnPostgres
from ledger.adapters import connection
from ledger.adapters.connection import NotReplicated, StandbyServer


def test_every_connection_gets_a_connect_timeout_and_tcp_liveness_unless_the_url_says() -> None:
    params = conninfo_to_dict(connection.with_liveness("postgresql://u@h/d"))
    assert params["connect_timeout"] == "2"
    assert params["keepalives"] == "1" and params["keepalives_idle"] == "5"
    assert params["tcp_user_timeout"] == "5000"
    mine = conninfo_to_dict(connection.with_liveness("postgresql://u@h/d?connect_timeout=7"))
    assert mine["connect_timeout"] == "7"


def test_a_write_that_reaches_a_read_only_server_closes_the_connection(db_url: str) -> None:
    # What a demoted primary, or a standby a proxy still routes to, answers.
    url = make_conninfo(db_url, options="-c default_transaction_read_only=on")
    conn = connection.connect(url, autocommit=True)
    with pytest.raises(StandbyServer):
        conn.execute("CREATE TABLE never_made (x int)")
    assert conn.closed  # a pool discards it: no later write meets the same server


def test_a_commit_whose_wait_for_the_synchronous_standby_was_cancelled_is_not_acknowledged() -> (
    None
):
    pg = OwnPostgres()
    try:
        with psycopg.connect(pg.url, autocommit=True) as admin:
            # The admin's own statements never wait for a standby (its CREATE TABLE would
            # otherwise wait for ever once the setting below is in force).
            admin.execute("SET synchronous_commit = local")
            admin.execute("CREATE TABLE scans (id int)")
            # A synchronous standby that never comes: every COMMIT waits for it.
            admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
            admin.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 4
            while admin.execute("SHOW synchronous_standby_names").fetchone() != ("nobody",):
                assert time.monotonic() < deadline, "the server never took the setting"
                time.sleep(0.05)
            conn = connection.connect(pg.url, autocommit=True)
            pid = conn.info.backend_pid
            failure: list[BaseException] = []

            def write() -> None:
                try:
                    conn.execute("INSERT INTO scans VALUES (1)")
                except BaseException as exc:
                    failure.append(exc)

            writer = threading.Thread(target=write)
            writer.start()
            deadline = time.monotonic() + 4
            while not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'SyncRep'",
                (pid,),
            ).fetchone():
                assert time.monotonic() < deadline, "the COMMIT never waited for the standby"
                time.sleep(0.05)
            # Someone cancels the wait: PostgreSQL reports the COMMIT as done, with a WARNING.
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
            writer.join(timeout=10)
            assert len(failure) == 1 and isinstance(failure[0], NotReplicated), failure
            # (Committed on this server only: exactly what a failover could lose.)
            assert admin.execute("SELECT count(*) FROM scans").fetchone() == (1,)
            conn.close()
    finally:
        pg.stop()
