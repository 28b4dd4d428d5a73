"""A tenant's retained facts written as `pickpack events export` writes them: with the
archive files, what an archived store is replayed from into a staging store."""

from __future__ import annotations

from pathlib import Path

import orjson

from ledger.adapters.event_store import EventStore
from ledger.services.changes import read


def export_retained(url: str, tenant: str, after: int, path: Path) -> Path:
    """The tenant's facts after position `after`, one change-feed item a line, in `path`."""
    store = EventStore.from_url(url, pool_size=1)
    lines = []
    try:
        while page := read(store.connection, tenant, after, 1000)["items"]:
            lines += [orjson.dumps(item) for item in page]
            after = page[-1]["position"]
    finally:
        store.close()
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
