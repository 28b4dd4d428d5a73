"""Tables made beside a view's live ones, filled, then swapped in at once.

A rebuild (projections/rebuild.py), a tenant's rebuild (projections/rebuild_tenant.py)
and the views' baseline (projections/baseline.py) each keep tables of the same shape as a
view's, named `<table><suffix>`: made LIKE the live table, with its column statistics
settings, and, for the rebuilds, renamed into its place in one transaction, the indexes
taking the names the replaced table's had.
"""

from __future__ import annotations

import psycopg
from psycopg import sql


def create_like(conn: psycopg.Connection, live: str, fresh: str, *, replace: bool = True) -> None:
    """Make `fresh` LIKE `live`, indexes and statistics settings included: dropped and
    made again (`replace`), or made only if it is not there."""
    if replace:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(fresh)))
    conn.execute(
        sql.SQL("CREATE TABLE {} {} (LIKE {} INCLUDING ALL)").format(
            sql.SQL("") if replace else sql.SQL("IF NOT EXISTS"),
            sql.Identifier(fresh),
            sql.Identifier(live),
        )
    )
    _copy_column_statistics_settings(conn, live, fresh)


def swap_in(conn: psycopg.Connection, table: str, suffix: str) -> None:
    """Put `<table><suffix>` in the place of `table` (in the caller's transaction: readers
    see the old table or the new one) and drop the old one."""
    live_indexes = _indexes(conn, table)
    conn.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(table), sql.Identifier(table + "__old")
        )
    )
    conn.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(table + suffix), sql.Identifier(table)
        )
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table + "__old")))
    _rename_indexes(conn, table, live_indexes)


def _indexes(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """A table's index names by what they index: uniqueness, method, columns, predicate
    (the definition without its index and table names)."""
    rows = conn.execute(
        "SELECT i.relname, x.indisunique, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
        (table,),
    ).fetchall()
    return {
        f"{unique} {definition.split(' USING ', 1)[1]}": name for name, unique, definition in rows
    }


def _rename_indexes(conn: psycopg.Connection, table: str, names: dict[str, str]) -> None:
    """Give the swapped-in table's indexes the names the replaced table's had
    (`order_status_pkey`, not `order_status__rebuild_pkey`): LIKE ... INCLUDING ALL
    names them after the fresh table, and a migration or an operator naming an index
    must find it after a rebuild. Renaming a primary key's index renames the constraint."""
    for key, name in _indexes(conn, table).items():
        wanted = names.get(key)
        if wanted and wanted != name:
            conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(name), sql.Identifier(wanted)
                )
            )


def _copy_column_statistics_settings(conn: psycopg.Connection, live: str, fresh: str) -> None:
    """Give `fresh` the n_distinct settings of `live` (LIKE ... INCLUDING ALL does not).

    migrations/0006_key_lookups.sql sets them: tenants are few, whatever a small ANALYZE
    saw.
    """
    rows = conn.execute(
        "SELECT attname, option FROM pg_attribute, unnest(attoptions) AS option "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "AND option ~ '^n_distinct(_inherited)?='",
        (live,),
    ).fetchall()
    for column, option in rows:
        name, value = option.split("=", 1)
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET ({} = {})").format(
                sql.Identifier(fresh),
                sql.Identifier(column),
                sql.SQL(name),
                sql.Literal(float(value)),
            )
        )
