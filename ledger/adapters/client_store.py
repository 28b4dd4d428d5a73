"""The registered OAuth clients' table (migrations/0007_oauth_clients.sql).

Thin: SQL in, plain values out. Every function takes a psycopg connection (autocommit,
any row factory: rows are read as tuples here), so the API's pool and a CLI command's
own connection both serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import tuple_row


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    tenant: str
    name: str | None
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


_COLUMNS = "client_id, tenant, name, scopes, secret_hash, created_at, revoked_at"


def _record(row: Any) -> ClientRecord:
    cid, tenant, name, scopes, secret_hash, created_at, revoked_at = row
    return ClientRecord(cid, tenant, name, tuple(scopes), secret_hash, created_at, revoked_at)


def insert(
    conn: Any,
    client_id: str,
    tenant: str,
    name: str | None,
    scopes: tuple[str, ...],
    secret_hash: str,
) -> None:
    conn.execute(
        "INSERT INTO oauth_clients (client_id, tenant, name, scopes, secret_hash)"
        " VALUES (%s, %s, %s, %s, %s)",
        (client_id, tenant, name, list(scopes), secret_hash),
    )


def get(conn: Any, client_id: str) -> ClientRecord | None:
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM oauth_clients WHERE client_id = %s", (client_id,)
        ).fetchone()
    return _record(row) if row else None


def list_clients(conn: Any, tenant: str | None = None) -> list[ClientRecord]:
    with conn.cursor(row_factory=tuple_row) as cur:
        if tenant is None:
            cur.execute(f"SELECT {_COLUMNS} FROM oauth_clients ORDER BY tenant, created_at")
        else:
            cur.execute(
                f"SELECT {_COLUMNS} FROM oauth_clients WHERE tenant = %s ORDER BY created_at",
                (tenant,),
            )
        return [_record(row) for row in cur.fetchall()]


def revoke(conn: Any, client_id: str) -> bool:
    """Mark the client revoked (once; the first time is kept). False if there is no such client."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "UPDATE oauth_clients SET revoked_at = coalesce(revoked_at, now())"
            " WHERE client_id = %s RETURNING client_id",
            (client_id,),
        )
        return cur.fetchone() is not None


def revoked_ids(conn: Any) -> frozenset[str]:
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("SELECT client_id FROM oauth_clients WHERE revoked_at IS NOT NULL")
        return frozenset(row[0] for row in cur.fetchall())
