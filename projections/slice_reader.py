"""Reading a rebuild's slices ahead, on a connection and a thread of their own.

A slice's read starts with a scan of the facts by order (PostgreSQL's work, seconds on a
large store) before its first row, and its rows come in chunks the rebuild folds in
Python. Read on the rebuild's own connection, the database waits while Python folds and
Python waits while the database scans. Read here, the two overlap: the thread asks for
the next chunk, or starts the next slice's query, while the rebuild folds the last one
(psycopg lets go of the interpreter while it waits for the server). A few chunks are
held ahead, no more, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql

AHEAD = 3  # chunks read ahead of the fold

Rows = list[tuple[int, str, bytes]]
_END = object()


class SliceReader:
    """Reads each query of `queries` in turn, `chunk` rows at a time, ahead of its
    consumer; `rows()` gives one query's chunks, in order, then the next query's."""

    def __init__(
        self, url: str, queries: Iterable[tuple[sql.Composed, dict[str, Any]]], chunk: int
    ) -> None:
        self._url = url
        self._queries = list(queries)
        self._chunk = chunk
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="rebuild-slice-reader")

    def __enter__(self) -> SliceReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # let a put waiting for room go
            with contextlib.suppress(queue.Empty):
                self._chunks.get(timeout=0.1)
        self._thread.join()

    def rows(self) -> Iterator[Rows]:
        """The next query's chunks, in order."""
        while (item := self._chunks.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _read(self) -> None:
        try:
            with psycopg.connect(self._url) as conn:
                for query, params in self._queries:
                    with conn.transaction(), conn.cursor("rebuild_slice", binary=True) as cur:
                        cur.itersize = self._chunk
                        cur.execute(query, params)
                        while rows := cur.fetchmany(self._chunk):
                            if not self._put(rows):
                                return
                    if not self._put(_END):
                        return
        except BaseException as error:  # handed to the fold, which raises it
            self._put(error)
