"""The store recorded by tests/fixtures/record_store.py, loaded row for row into a database."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

import orjson
import psycopg

from tests.fixtures.record_store import FIXTURE, INDEX_TABLES


def fixture() -> dict[str, Any]:
    return orjson.loads(FIXTURE.read_bytes())  # type: ignore[no-any-return]


def load(url: str, data: dict[str, Any]) -> None:
    """Insert the recorded rows as they were stored, positions included."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for r in data["stored_events"]:
            conn.execute(
                "INSERT INTO stored_events "
                "(notification_id, originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    r["notification_id"],
                    UUID(r["originator_id"]),
                    r["originator_version"],
                    r["topic"],
                    base64.b64decode(r["state"]),
                ),
            )
        conn.execute(
            "SELECT setval('stored_events_notification_id_seq', max(notification_id)) "
            "FROM stored_events"
        )
        for table in INDEX_TABLES:
            for row in data["index_tables"][table]:
                if "content_hash" in row:
                    row = {**row, "content_hash": bytes.fromhex(row["content_hash"])}
                cols = ", ".join(row)
                marks = ", ".join(["%s"] * len(row))
                conn.execute(
                    f"INSERT INTO {table} ({cols}) VALUES ({marks})",  # type: ignore[arg-type]
                    list(row.values()),
                )
