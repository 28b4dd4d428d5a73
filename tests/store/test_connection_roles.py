"""Every connection says what it is, and a URL's parameters reach every connection."""

from __future__ import annotations

import time

import psycopg

from devtools.harness.service import EXAMPLE_EVENT, Service
from ledger.adapters.database import for_role
from ledger.adapters.pool import make_datastore
from ledger.version import service_version

# Each connection names its role and the release it belongs to.
ROLES = {
    f"pickpack-{role}/{service_version()}" for role in ("api", "writer", "projections", "listen")
}


def test_each_kind_of_connection_names_itself_in_pg_stat_activity(service: Service) -> None:
    assert service.post_event({**EXAMPLE_EVENT, "eventId": "r1"}).status_code == 200
    assert service.events().status_code == 200  # a read: the api pool
    dbname = psycopg.conninfo.conninfo_to_dict(service.runtime.database.url)["dbname"]
    deadline = time.monotonic() + 5
    names: set[str] = set()
    while time.monotonic() < deadline:
        with psycopg.connect(service.runtime.database.url, autocommit=True) as conn:
            names = {
                name
                for (name,) in conn.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE datname = %s",
                    (dbname,),
                )
            }
        if names >= ROLES:
            break
        time.sleep(0.05)
    assert names >= ROLES


def test_a_name_in_the_url_is_kept() -> None:
    url = "postgresql://u@h:5432/d?application_name=mine"
    assert for_role(url, "writer") == url


def test_the_pool_keeps_the_urls_other_parameters(db_url: str) -> None:
    # sslmode and options were dropped when only the library's five named ones went on
    url = psycopg.conninfo.make_conninfo(db_url, sslmode="disable")
    datastore = make_datastore(for_role(url, "writer"))
    try:
        kwargs = datastore.pool.kwargs
        assert kwargs["sslmode"] == "disable"
        assert kwargs["application_name"] == f"pickpack-writer/{service_version()}"
        with datastore.get_connection() as conn:
            row = conn.execute("SHOW application_name").fetchone()
            assert row is not None
            assert row["application_name"] == f"pickpack-writer/{service_version()}"
    finally:
        datastore.close()
