"""The views' baseline tables keep the shape of the views' tables.

A rebuild after an archive copies the baseline's rows into tables made LIKE the views'
(projections/baseline.py); a migration that changes a view's table without changing its
`__baseline` table the same way would make that copy fail, or lose a column, only on
stores that have archived. Migration 0061 says so; this holds every migration to it.
"""

from __future__ import annotations

import psycopg

from projections.baseline import SUFFIX
from projections.registry import PROJECTIONS

COLUMNS = """
SELECT attname, format_type(atttypid, atttypmod), attnotnull
FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
"""


def test_every_view_table_and_its_baseline_have_the_same_columns(db_url: str) -> None:
    tables = [t for p in PROJECTIONS.values() for t in p.tables]
    assert tables
    with psycopg.connect(db_url) as conn:
        for t in tables:
            view = conn.execute(COLUMNS, (t,)).fetchall()
            kept = conn.execute(COLUMNS, (t + SUFFIX,)).fetchall()
            assert kept == view, f"{t}{SUFFIX} differs from {t}: change both in a migration"
