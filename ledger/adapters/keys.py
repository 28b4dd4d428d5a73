"""The service's own keys, kept in PostgreSQL (table ledger_keys, migrations/0008).

The database is the one thing every replica shares and every restart finds again, so a
key created there once (by the migration) is the same for all of them; a backup of the
database carries it along with the fingerprints made with it.
"""

from __future__ import annotations

from ledger.adapters.event_store import EventStore

SAAS_TOKEN_FINGERPRINT = "saas_token_fingerprint"


def fingerprint_key(store: EventStore) -> bytes:
    """The HMAC key of saas-token fingerprints."""
    with store.datastore.get_connection() as conn:
        row = conn.execute(
            "SELECT key FROM ledger_keys WHERE name = %s", (SAAS_TOKEN_FINGERPRINT,)
        ).fetchone()
    if row is None:
        raise RuntimeError("ledger_keys has no saas-token key: run `pickpack migrate`")
    return bytes(row["key"] if isinstance(row, dict) else row[0])
