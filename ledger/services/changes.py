"""The change feed: every fact of a tenant by position, with long-poll and streaming.

Waiting clients cost nothing while nothing happens: a waiter is an asyncio future on
the `CommitBell`, rung after each commit by the process's existing wake-ups (the
group-commit writer's `on_commit`, the store's `on_committed` for order commands, and
the projection runner's LISTEN connection for other processes' appends). A ring wakes
every waiter once; each reads the feed again (one indexed query), and goes back to
waiting if its tenant has nothing new. No client polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from ledger.adapters import story_store
from ledger.adapters.replica import Connect
from ledger.domain.story import change_item

MAX_LIMIT = 1000
MAX_WAIT_SECONDS = 30.0
# A stream sends a comment this often when it has nothing to send, so proxies and
# clients keep an idle connection open (and a dead one is noticed).
KEEP_ALIVE_SECONDS = 15.0
STREAM_COALESCE_SECONDS = 0.05


class CommitBell:
    """Rung (from any thread) after facts commit; waiters on any event loop wake up.

    `generation` counts rings: a waiter notes it before reading the feed and waits only
    if no ring came since, so a commit between its read and its wait is never missed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.generation = 0
        self._waiters: list[asyncio.Future[None]] = []

    def ring(self) -> None:
        with self._lock:
            self.generation += 1
            waiters, self._waiters = self._waiters, []
        for future in waiters:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                future.get_loop().call_soon_threadsafe(_wake, future)

    async def wait(self, seen: int, timeout: float) -> bool:
        """Wait until a ring after generation `seen`, at most `timeout` s; True if rung."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self.generation != seen:
                return True
            self._waiters.append(future)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove(future)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def read(
    current: Connect, tenant: str, after: int, limit: int, catch_up: Connect | None = None
) -> dict[str, Any]:
    """One page of the feed: `{"items", "next"}`; `next` is `after` when none.

    `current` reads the primary. `catch_up`, connections that may lag it (a replica's),
    is read first: whatever it has is the start of the page, and only the rest, if it
    had fewer than `limit` facts, is read on `current`. A replica holds a prefix of the
    primary's facts in position order (positions are taken under the append lock, which
    is held to the commit, and a replica replays commits in order), so the page is the
    same as if all of it were read on the primary: a client catching up reads from the
    replica, one at the head reads its newest facts from the primary, never stale.
    """
    facts: list[Any] = []
    if catch_up is not None:
        with catch_up() as conn:
            facts = story_store.changes(conn, tenant, after, limit)
    if len(facts) < limit:
        start = facts[-1][0] if facts else after
        with current() as conn:
            facts += story_store.changes(conn, tenant, start, limit - len(facts))
    items = [change_item(p, cls, state) for p, cls, state in facts]
    return {"items": items, "next": items[-1]["position"] if items else after}


Reader = Callable[[int], Any]  # after -> an awaitable page (run off the event loop)


async def poll(bell: CommitBell, read_page: Reader, after: int, wait: float) -> dict[str, Any]:
    """The page after `after`; an empty one is held until a fact commits or `wait` ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        seen = bell.generation
        page: dict[str, Any] = await read_page(after)
        remaining = deadline - loop.time()
        if page["items"] or remaining <= 0:
            return page
        await bell.wait(seen, remaining)


async def stream(
    bell: CommitBell,
    read_page: Reader,
    after: int,
    page_size: int = MAX_LIMIT,
    keep_alive: float = KEEP_ALIVE_SECONDS,
    coalesce: float = STREAM_COALESCE_SECONDS,
    ended: Callable[[], Awaitable[str | None]] | None = None,
    check_in: Callable[[], float] | None = None,
) -> AsyncIterator[bytes]:
    """Server-sent events: each fact once, `id:` its position, comments while idle.

    `ended()` says why the stream must stop (its token expired, its client was revoked),
    or None; it is asked before every read and at the latest `check_in()` seconds after
    the last time. The stream then sends a last `end` event with the reason and stops.
    """
    loop = asyncio.get_running_loop()
    yield b"retry: 1000\n\n"
    last_sent = loop.time()
    while True:
        if ended is not None and (reason := await ended()) is not None:
            yield end_event(reason)
            return
        seen = bell.generation
        page = await read_page(after)
        for item in page["items"]:
            yield sse_event(item)
        after = page["next"]
        if page["items"]:
            last_sent = loop.time()
        if len(page["items"]) >= page_size or (page["items"] and not coalesce):
            continue  # more are waiting
        if page["items"]:
            # Under a steady ingest every batch commit rings: read at most once per
            # `coalesce` seconds, so a stream costs a bounded number of reads however
            # busy the tenant is (facts arrive at most that much later).
            await asyncio.sleep(coalesce)
            continue
        timeout = keep_alive - (loop.time() - last_sent)
        if check_in is not None:
            timeout = min(timeout, check_in())
        if not await bell.wait(seen, max(timeout, 0.0)) and (loop.time() - last_sent >= keep_alive):
            yield b": keep-alive\n\n"
            last_sent = loop.time()


def end_event(reason: str) -> bytes:
    """The stream's last event: why it ends (the client must reconnect with a new token)."""
    return b"event: end\ndata: %s\n\n" % orjson.dumps({"reason": reason})


def sse_event(item: dict[str, Any]) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (item["position"], orjson.dumps(item))
