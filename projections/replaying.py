"""What every replay of the store shares: its memory bound, reading and decoding the
store in position order, and the garbage collector paused while it folds.

Used by the rebuilds (projections/rebuild.py, rebuild_slices.py, rebuild_tenant.py) and
the views' baseline (projections/baseline.py).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import psycopg

from projections.base import Recorded, decode_rows
from projections.runner import SELECT_BATCH

# Rows the accumulators may hold before a flush, in line_totals rows (an order state
# counts as several: OrderStatusAccumulator.STATE_WEIGHT). The store's lines grow with
# it; past this bound a flush writes them and lets them go, so a rebuild's memory stays
# bounded however large the store (about 100 MB of rows at the bound, under a 300 MB
# budget for the process: tests/projections/test_rebuild_memory.py). A store of
# 1,000,000 scans over 100,000 lines and 20,000 orders stays under it: one flush.
MAX_ROWS = 300_000

# Fields with few distinct values that the accumulators keep in their rows' keys (every
# line's tenant, product and unit, every order state's products and units): decoded, each
# event carries its own copies; interned, a row holds shared ones (a fifth less memory
# per order and its lines).
SHARED_FIELDS = ("tenant", "product_id", "unit")


def read_chunk(conn: psycopg.Connection, position: int, chunk: int) -> list[Recorded]:
    # A binary cursor hands bytea over as bytes, with no hex decoding.
    with conn.cursor(binary=True) as curs:
        rows = curs.execute(SELECT_BATCH, (position, chunk)).fetchall()
    return decode(rows)


def decode(rows: list[tuple[int, str, bytes]]) -> list[Recorded]:
    """Rows of (position, topic, state) decoded, their few-valued fields interned."""
    return decode_rows(rows, shared=SHARED_FIELDS)


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while replaying.

    A rebuild keeps hundreds of thousands of live rows in memory and allocates millions
    of short-lived dicts; each gen-2 collection walks every live object, which measured
    as a third of the rebuild's time. Nothing here makes reference cycles: reference
    counting frees the decoded events as soon as they are folded.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
