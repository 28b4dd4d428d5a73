"""What a rebuild swaps in is a table like the one it replaces: same index and
constraint names, and statistics from the start."""

from __future__ import annotations

import psycopg

from devtools.harness.support import packing_event
from ledger.adapters.event_store import EventStore
from ledger.domain.packing import Attribution
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS

TABLES = sorted(t for p in PROJECTIONS.values() for t in p.tables)


def _names(url: str) -> dict[str, tuple[list[str], list[str]]]:
    """Each projection table's index names and constraint names."""
    found = {}
    with psycopg.connect(url) as conn:
        for t in TABLES:
            indexes = conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1", (t,)
            ).fetchall()
            constraints = conn.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY 1", (t,)
            ).fetchall()
            found[t] = ([r[0] for r in indexes], [r[0] for r in constraints])
    return found


def test_a_rebuilt_table_keeps_its_index_names_and_is_analyzed(db_url: str) -> None:
    before = _names(db_url)
    assert all(indexes for indexes, _ in before.values())
    store = EventStore.from_url(db_url, pool_size=1, max_overflow=1)
    try:
        store.append_packing_events(
            [(packing_event(f"s{i}", order_id=f"o{i % 9}"), Attribution("u")) for i in range(200)]
        )
    finally:
        store.close()
    for _ in range(2):  # a second rebuild starts from the first one's table
        rebuild(db_url, list(PROJECTIONS.values()))
        assert _names(db_url) == before
    with psycopg.connect(db_url) as conn:
        analyzed = dict(
            conn.execute(  # type: ignore[arg-type]
                "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname = ANY(%s)",
                (TABLES,),
            ).fetchall()
        )
    assert analyzed == {t: True for t in TABLES}
