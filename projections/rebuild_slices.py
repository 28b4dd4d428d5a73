"""A rebuild that outgrows its memory: the store replayed one slice of orders at a time.

A rebuild folds the store in position order and writes what it holds whenever it holds
more than its bound (projections/rebuild.py). On a store whose orders' facts are spread
over all of it, each such write holds most order rows and the next chunk loads them
again: every event then costs an order row's load, an order row's write and a line's
write, and that is most of a rebuild's time (docs/performance.md, "Rebuild time").

So, once a fresh rebuild finds it cannot hold every row, it reads the store again one
slice of orders at a time: the facts of the orders whose id hashes into the slice, in
position order. All of an order's facts fall in one slice, so its state is folded to
the end in memory and written once, by COPY into rows nobody wrote before; so is each
line. A first slice of 1/64 of the orders measures what a slice holds; the rest are cut
so that one slice fits the bound. Memory stays bounded as before; the store is read
once per slice instead (a slice's facts found through the indexes of the facts by order).

Every fact the views fold is indexed with its order: a scan in packing_events, every
other fact in order_facts (the change feed's and the history's indexes). The slices read
those, after checking that they index every ledger event up to the head; on a store
where they do not, the rebuild goes on in position order as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from projections.base import Accumulator, Projection, Recorded
from projections.slice_reader import SliceReader

# The first slice: the orders whose hash has its low six bits zero (1/64 of them).
SAMPLE_BITS = 6
SAMPLE_MASK = (1 << SAMPLE_BITS) - 1
# A slice is cut to hold at most this share of the bound, by the first slice's measure:
# the hash spreads orders evenly, not exactly, and orders differ in size.
FILL = 0.6

# Any function of the order's key keeps an order's facts together; the order id alone
# is enough (one id in two tenants shares a slice, which costs nothing). hashtext is
# what PostgreSQL's hash indexes build on: the same value on every run of a server. The
# first slice is the orders whose hash has its low six bits zero (SAMPLE_MASK); every
# other slice leaves them out.
_SAMPLE = sql.SQL("(hashtext(order_id) & 63) = 0")
_SLICE = sql.SQL("(hashtext(order_id) & %(mask)s) = %(slice)s AND (hashtext(order_id) & 63) <> 0")

# A slice's facts after the baseline's position (0: none) up to the head, in position
# order: the positions from the two indexes of facts by order, then each fact's stored
# event by key.
_READ = sql.SQL("""
SELECT f.position, s.topic, s.state
FROM (
    SELECT position FROM packing_events
    WHERE position > %(after)s AND position <= %(head)s AND {member}
    UNION ALL
    SELECT position FROM order_facts
    WHERE position > %(after)s AND position <= %(head)s AND {member}
) AS f,
LATERAL (SELECT topic, state FROM stored_events
         WHERE notification_id = f.position OFFSET 0) AS s
ORDER BY f.position
""")

# Ledger events up to the head, against the facts the two indexes hold up to it.
_COVERED = """
SELECT (SELECT count(*) FROM stored_events
        WHERE notification_id <= %(head)s AND topic LIKE 'ledger.events:%%'),
       (SELECT count(*) FROM packing_events WHERE position <= %(head)s)
       + (SELECT count(*) FROM order_facts WHERE position <= %(head)s)
"""

Decode = Callable[[list[tuple[int, str, bytes]]], list[Recorded]]
Progress = Callable[[int, int], None]  # (position, head)


@dataclass
class Slices:
    """Where a sliced replay is: the head it replays up to, how many slices the rest of
    the orders are cut into (0 until the first slice has measured), the next slice to
    fold (-1: the first), and the views' baseline position the fresh tables started from
    (0: empty tables)."""

    head: int
    slices: int
    next: int
    after: int = 0


def covered(conn: psycopg.Connection, head: int) -> bool:
    """Whether the indexes of facts by order hold every ledger event up to `head`."""
    row = conn.execute(_COVERED, {"head": head}).fetchone()
    return row is not None and int(row[0]) == int(row[1])


def begin(
    conn: psycopg.Connection,
    group: list[Projection],
    suffix: str,
    head: int,
    after: int = 0,
    restart: Callable[[psycopg.Connection], None] | None = None,
) -> Slices:
    """Start the fresh tables again (empty, or with `restart` a copy of the views'
    baseline at `after`) and record that the rebuild goes on by slices from now.

    The position-order progress row goes: a release that does not know slices would
    resume from it into tables that already hold some slices' rows; without it, that
    release starts afresh.
    """
    names = [p.name for p in group]
    with conn.transaction():
        if restart is not None:
            # One snapshot for the baseline's position and the rows `restart` copies: an
            # archive may be folding into the baseline meanwhile.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for t in [t + suffix for p in group for t in p.tables]:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(t)))
        if restart is not None:
            restart(conn)
        conn.execute("DELETE FROM projection_rebuilds WHERE projection = ANY(%s)", (names,))
        conn.execute(
            "INSERT INTO projection_rebuild_slices (projection, head, slices, next) "
            "SELECT unnest(%s::text[]), %s, 0, -1 "
            "ON CONFLICT (projection) DO UPDATE SET head = excluded.head, slices = 0, "
            "next = -1, started_at = now()",
            (names, head),
        )
    return Slices(head, 0, -1, after)


def resumable(conn: psycopg.Connection, group: list[Projection]) -> Slices | None:
    """The sliced replay this group left behind, if every projection of it is at the
    same point."""
    rows = conn.execute(
        "SELECT head, slices, next FROM projection_rebuild_slices WHERE projection = ANY(%s)",
        ([p.name for p in group],),
    ).fetchall()
    points = {tuple(r) for r in rows}
    if len(rows) != len(group) or len(points) != 1:
        return None
    head, slices, next_ = points.pop()
    return Slices(int(head), int(slices), int(next_))


def forget(conn: psycopg.Connection, group: list[Projection]) -> None:
    conn.execute(
        "DELETE FROM projection_rebuild_slices WHERE projection = ANY(%s)",
        ([p.name for p in group],),
    )


def replay(
    conn: psycopg.Connection,
    url: str,
    group: list[Projection],
    accs: list[Accumulator],
    at: Slices,
    decode: Decode,
    chunk: int,
    max_rows: int,
    progress: Progress | None = None,
) -> int:
    """Fold every slice not folded yet into the fresh tables; the head they reach.

    Each slice is one transaction: its rows and the note that it is done commit
    together, so a killed rebuild resumes at the first slice not done. A slice that
    holds more than the bound after all (orders differ) flushes early and merges as a
    position-order rebuild does; its rows are right either way. The slices are read
    ahead on a connection of their own (projections/slice_reader.py).
    """
    names = [p.name for p in group]
    while at.slices == 0 or at.next < at.slices:
        todo = [at.next] if at.slices == 0 else list(range(at.next, at.slices))
        with SliceReader(url, [_query(at, s) for s in todo], chunk) as reader:
            for _ in todo:
                with conn.transaction():
                    peak = _fold_slice(conn, accs, reader.rows(), decode, max_rows, at.after)
                    if at.next < 0:
                        # What the first slice held, for the 63/64 of orders left, at FILL
                        # of the bound a slice; a power of two, so the slices split the
                        # hash's bits. At least two: the store did not fit in one pass (a
                        # store of few orders may have none in the first slice).
                        need = max(2.0, peak * SAMPLE_MASK / (max_rows * FILL))
                        at.slices = 1 << (math.ceil(need) - 1).bit_length()
                    at.next += 1
                    conn.execute(
                        "UPDATE projection_rebuild_slices SET slices = %s, next = %s "
                        "WHERE projection = ANY(%s)",
                        (at.slices, at.next, names),
                    )
                if progress:
                    done = (1 + at.next * SAMPLE_MASK / at.slices) / (1 + SAMPLE_MASK)
                    progress(int(at.head * done), at.head)
    return at.head


def _query(at: Slices, slice_: int) -> tuple[sql.Composed, dict[str, Any]]:
    """The read of one slice (-1: the first) of the orders cut into `at.slices`."""
    member = _SAMPLE if slice_ < 0 else _SLICE
    return _READ.format(member=member), {
        "after": at.after,
        "head": at.head,
        "mask": at.slices - 1,
        "slice": slice_,
    }


def _fold_slice(
    conn: psycopg.Connection,
    accs: list[Accumulator],
    chunks: Iterator[list[tuple[int, str, bytes]]],
    decode: Decode,
    max_rows: int,
    after: int,
) -> int:
    """Fold one slice's chunks and write its rows, in the caller's transaction; the most
    rows the accumulators held at once."""
    peak = 0
    if not after:
        for acc in accs:
            acc.start_empty()  # no row of this slice's orders was written: a new slice
    # From a baseline the slice's orders may have rows already (their archived facts,
    # copied from the baseline): the accumulators load each once, and merge it on flush.
    for rows in chunks:
        events = decode(rows)
        with conn.cursor() as curs:
            for acc in accs:
                acc.fold(curs, events)
        held = sum(acc.rows() for acc in accs)
        peak = max(peak, held)
        if held > max_rows:
            with conn.cursor() as curs:
                for acc in accs:
                    acc.flush(curs)
    with conn.cursor() as curs:
        for acc in accs:
            acc.flush(curs)
    return peak
