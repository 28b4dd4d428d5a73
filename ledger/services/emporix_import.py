"""Bringing Emporix's event history across, and checking the two services agree.

`import_events` reads an Emporix-compatible event feed page by page and appends every
event through the normal append (EventStore.append_packing_events, the same decision as
a scan posted here): its own eventId, timestamp and site, and, as the recorded `user`,
the user Emporix recorded it for. That attribution is given here, by a command run by
an operator with database access; the API never takes a user from a request body, only
from the token's subject. Idempotency makes any re-run safe: an event recorded before
counts as "already there", the same eventId with other content as "conflicting" (the
event recorded first is kept).

Each page is appended in one transaction, then the import's progress row is updated
(migrations/0012_emporix_imports.sql). If the run stops (the source fails after its
retries, the process is killed), the next run with the same tenant, URL and `since`
resumes at the first page not yet recorded; a page appended but not yet noted is read
again and counts as "already there". The pages are counted from `since`, so a resume
assumes the feed's earlier pages did not change meanwhile; a final full run (the next
run after one that finished starts again at the first page) catches anything that did.

The peer is bounded (a page's size and bytes, the whole run's deadline: the source
adapter, ledger/adapters/emporix.py) and checked: a page that repeats an earlier page
of this run (a service that ignores `pageNumber` would otherwise be read for ever) stops
the import with a SourceError. Everything a page's progress needs is worked out before
the page is appended, so nothing the peer sent can fail between its commit and its
progress being saved.

`reconcile` sums both services' events per (order, product, unit) and lists where they
differ.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

import orjson

from ledger.adapters import feed_store, import_progress
from ledger.adapters.emporix import SourceDeadline, SourceError
from ledger.adapters.event_store import EventStore
from ledger.domain.amounts import Amounts
from ledger.domain.cutover import (
    STORED_NAMES,
    Difference,
    InvalidFeedItem,
    LineKey,
    Tally,
    add_to_totals,
    differences,
    from_feed_item,
)
from ledger.domain.packing import Attribution, PackingEvent, Verdict

DEFAULT_PAGE_SIZE = 1000
MAX_PROBLEMS = 100  # kept for the summary; the counts cover the rest


class EventSource(Protocol):
    url: str

    def events_page(self, since: str | None, page: int, size: int) -> list[dict[str, Any]]: ...


def import_events(
    store: EventStore,
    source: EventSource,
    tenant: str,
    since: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    on_page: Callable[[Tally, int], None] | None = None,
    deadline: float | None = None,
) -> tuple[Tally, int]:
    """Import the feed; (the whole import's tally, the page it started at).

    `on_page(tally, page)` is called after each page is recorded (for a progress bar).
    `deadline` (a time.monotonic() instant): no page is started after it
    (SourceDeadline); the source bounds each call by the same instant.
    """
    key = (tenant, source.url, since or "")
    with store.connection() as conn:
        saved = import_progress.load(conn, *key)
    tally = Tally()
    start = None
    if saved is not None and not saved.finished and saved.page_size == page_size:
        start = saved.next_page
        tally = Tally.from_dict(saved.counts)
    last_time = saved.last_event_time if saved is not None else None
    first = None
    for page, items in pages(source, since, page_size, start):
        first = page if first is None else first
        # Worked out before the page is appended: nothing may fail between its commit
        # and its progress being saved (a null item once did, and every re-run with it).
        last_time = _last_time(items) or last_time
        done = len(items) < page_size
        tally.add(_record_page(store, tenant, items))
        del tally.problems[MAX_PROBLEMS:]
        with store.connection() as conn:
            import_progress.save(
                conn, *key, page_size, page + 1, tally.as_dict(), last_time, finished=done
            )
        if on_page is not None:
            on_page(tally, page)
        if not done and deadline is not None and time.monotonic() >= deadline:
            raise SourceDeadline(f"the import's deadline passed after page {page}")
    return tally, first if first is not None else 1


def _last_time(items: list[Any]) -> str | None:
    """The last event's timestamp, from the last item that has one as text."""
    for item in reversed(items):
        stamp = item.get("timestamp") if isinstance(item, dict) else None
        if isinstance(stamp, str):
            return stamp
    return None


def _fingerprint(items: list[Any]) -> bytes:
    return hashlib.sha256(orjson.dumps(items, option=orjson.OPT_SORT_KEYS)).digest()


def pages(
    source: EventSource, since: str | None, size: int, start: int | None = None
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(page number, events) until a short page. From `start`, or from the first page.

    Which number the first page has is not settled: the Pick-Pack spec allows
    `pageNumber` 0 and says no more, this service (like the Order API) counts from 1 and
    reads 0 as 1. So a fresh read asks for pages 0 and 1: the same events twice (or an
    empty or refused page 0) means numbering from 1; different events mean from 0, and
    page 0 is the first. One extra request, and no first page skipped either way.

    A full page equal to one already read in this run means the service ignores
    `pageNumber`: SourceError, instead of reading the same page for ever.
    """
    seen: dict[bytes, int] = {}

    def checked(page: int, items: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        if len(items) >= size:
            mark = _fingerprint(items)
            if mark in seen:
                raise SourceError(
                    f"page {page} repeats page {seen[mark]}: the service ignores pageNumber"
                )
            seen[mark] = page
        return page, items

    if start is None:
        try:
            zero = source.events_page(since, 0, size)
        except SourceError as exc:
            if exc.status != 400:
                raise
            zero = []
        one = source.events_page(since, 1, size)
        if zero and zero != one:
            yield checked(0, zero)
            if len(zero) < size:
                return
        yield checked(1, one)
        if len(one) < size:
            return
        start = 2
    page = start
    while True:
        items = source.events_page(since, page, size)
        yield checked(page, items)
        if len(items) < size:
            return
        page += 1


def _record_page(store: EventStore, tenant: str, items: list[dict[str, Any]]) -> Tally:
    tally = Tally(read=len(items))
    batch: list[tuple[PackingEvent, Attribution]] = []
    for item in items:
        try:
            event, user = from_feed_item(tenant, item)
        except InvalidFeedItem as exc:
            tally.refused += 1
            ref = item.get("eventId") if isinstance(item, dict) else None
            tally.problems.append(f"{ref or '?'}: {exc}")
            continue
        # No saas-token: none came with the history, and none is invented.
        batch.append((event, Attribution(user, None)))
    for outcome in store.append_packing_events(batch):
        tally.count(outcome.verdict)
        if outcome.verdict is Verdict.CONFLICT:
            tally.problems.append(f"{outcome.event.event_id}: recorded here with other content")
        elif outcome.verdict is Verdict.ORDER_CLOSED:
            tally.problems.append(f"{outcome.event.event_id}: order is CANCELLED here")
    return tally


def our_feed(store: EventStore, tenant: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
    """This service's scans, page by page, as stored (the stored names: STORED_NAMES)."""
    offset = 0
    while True:
        with store.connection() as conn:
            states = feed_store.events_after(conn, tenant, None, offset, page_size)
        yield states
        if len(states) < page_size:
            return
        offset += page_size


def reconcile(
    store: EventStore,
    source: EventSource,
    tenant: str,
    until: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> tuple[list[Difference], int]:
    """The lines whose totals differ, and how many lines were compared."""
    theirs: dict[LineKey, Amounts] = {}
    ours: dict[LineKey, Amounts] = {}
    for _, items in pages(source, None, page_size):
        add_to_totals(theirs, items, until)
    for items in our_feed(store, tenant, page_size):
        add_to_totals(ours, items, until, names=STORED_NAMES)
    return differences(theirs, ours), len(set(theirs) | set(ours))
