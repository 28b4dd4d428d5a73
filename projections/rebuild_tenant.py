"""Rebuilding one tenant's rows of a projection, in place; every other tenant's stay.

A whole rebuild (projections/rebuild.py) swaps new tables in; a tenant's rebuild cannot,
since the tables hold every tenant. Its rows are folded into a fresh table of their own,
then replaced in the live table in one transaction under the projection's lock.

Once facts are archived, the fresh table starts as a copy of the tenant's rows of the
views' baseline (projections/baseline.py) and the tenant's facts are folded from the
baseline's position on, as a whole rebuild does.
"""

from __future__ import annotations

import contextlib
import time

import psycopg
from psycopg import sql

from projections import baseline
from projections.base import Projection, Recorded, decode_rows, lock_key
from projections.fresh_tables import create_like
from projections.rebuild import Progress, RebuildReport, _claim, _outrun
from projections.replaying import MAX_ROWS, no_cyclic_gc

TENANT_SUFFIX = "__tenant"

# The next `n` facts of one tenant in (a, b], in position order: each index gives its
# first `n`, the merge keeps the first `n` of both, and only those are read from the
# store, by key (the change feed's query, bounded above: ledger/adapters/story_store.py).
TENANT_BATCH = """
WITH f AS MATERIALIZED (
    (SELECT position FROM packing_events
     WHERE tenant = %(t)s AND position > %(a)s AND position <= %(b)s
     ORDER BY position LIMIT %(n)s)
    UNION ALL
    (SELECT position FROM order_facts
     WHERE tenant = %(t)s AND position > %(a)s AND position <= %(b)s
     ORDER BY position LIMIT %(n)s)
    ORDER BY position LIMIT %(n)s
)
SELECT f.position, s.topic, s.state
FROM f, LATERAL (SELECT topic, state FROM stored_events
                 WHERE notification_id = f.position OFFSET 0) s
ORDER BY f.position
"""


def _tenant_chunk(
    conn: psycopg.Connection, tenant: str, after: int, upto: int, chunk: int
) -> list[Recorded]:
    with conn.cursor(binary=True) as curs:
        rows = curs.execute(TENANT_BATCH, {"t": tenant, "a": after, "b": upto, "n": chunk})
        return decode_rows(rows.fetchall())


def _tracked(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(
        "SELECT notification_id FROM notification_tracking WHERE application_name = %s", (name,)
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def rebuild_tenant(
    url: str,
    projections: Projection | list[Projection],
    tenant: str,
    chunk: int = 10_000,
    progress: Progress | None = None,
    max_rows: int = MAX_ROWS,
) -> RebuildReport:
    """Rebuild one tenant's rows of each projection; every other tenant's rows stay as
    they are.

    Each projection in turn: its tenant's facts up to the position the projection has
    applied are folded into a fresh table of the tenant's rows alone (read through the
    feed's per-tenant indexes, so a small tenant of a large store is quick), flushed
    whenever the accumulator holds more than `max_rows` rows. Then one transaction takes
    the projection's lock (pausing its live runner), folds what the runner applied
    meanwhile, replaces the tenant's rows in the live table with the fresh ones and raises
    the projection's generation, so no runner keeps a state it held of the old rows. The
    tracked position is the runner's and does not move: the rows are exactly those of the
    facts up to it. One rebuild of a projection at a time, whole or per tenant (`_claim`).
    """
    group = projections if isinstance(projections, list) else [projections]
    started = time.perf_counter()
    folded = start = 0
    with no_cyclic_gc(), psycopg.connect(url, autocommit=True) as conn:
        _claim(conn, group)
        try:
            for projection in group:
                n, start = _rebuild_tenant(conn, projection, tenant, chunk, progress, max_rows)
                folded += n
        finally:
            if not conn.closed and not conn.broken:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock_all()")
    return RebuildReport(
        "+".join(p.name for p in group), folded, time.perf_counter() - started, 0, 0, start
    )


def _rebuild_tenant(
    conn: psycopg.Connection,
    projection: Projection,
    tenant: str,
    chunk: int,
    progress: Progress | None,
    max_rows: int,
) -> tuple[int, int]:
    """The tenant's facts folded, and the baseline's position the fold began from."""
    with conn.transaction():
        # One snapshot for the baseline's position and its rows (an archive may be
        # folding into it meanwhile: projections/baseline.py).
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        start = baseline.start(conn, [projection])  # BaselineMissing: refused
        for t in projection.tables:
            create_like(conn, t, t + TENANT_SUFFIX)
        if start:
            baseline.copy_rows(conn, projection, TENANT_SUFFIX, tenant)
    acc = projection.accumulator(TENANT_SUFFIX)
    if not start:
        acc.start_empty()
    upto = _tracked(conn, projection.name)
    position, folded = start, 0
    while events := _tenant_chunk(conn, tenant, position, upto, chunk):
        with conn.cursor() as curs:
            acc.fold(curs, events)
            if acc.rows() > max_rows:
                acc.flush(curs)
        position = events[-1].position
        folded += len(events)
        if progress:
            progress(position, upto)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(projection.name),))
        outrun = _outrun(conn, start)
        if outrun is not None:
            raise outrun  # an archive dropped facts of the tenant not read yet
        upto = _tracked(conn, projection.name)  # what the live runner applied meanwhile
        while events := _tenant_chunk(conn, tenant, position, upto, chunk):
            with conn.cursor() as curs:
                acc.fold(curs, events)
            position = events[-1].position
            folded += len(events)
        with conn.cursor() as curs:
            acc.flush(curs)
        for t in projection.tables:
            live, fresh = sql.Identifier(t), sql.Identifier(t + TENANT_SUFFIX)
            conn.execute(sql.SQL("DELETE FROM {} WHERE tenant = %s").format(live), (tenant,))
            conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(live, fresh))
            conn.execute(sql.SQL("DROP TABLE {}").format(fresh))
        conn.execute(
            "INSERT INTO projection_generations (projection, generation) VALUES (%s, 1) "
            "ON CONFLICT (projection) DO UPDATE "
            "SET generation = projection_generations.generation + 1",
            (projection.name,),
        )
    if progress:
        progress(upto, upto)
    return folded, start
