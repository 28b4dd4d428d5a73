"""An Emporix-compatible service as a source: its token endpoint and its event feed.

Thin httpx adapter. `EmporixSource.token()` asks `{url}/oauth/token` for a
client-credentials token (form-encoded, the OAuth Service's contract; the scope names the
tenant and the view scope, as Emporix expects); `events_page` reads one page of
`GET {url}/pick-pack/{tenant}/events` (timestamp, pageNumber, pageSize). A 401 on a page
fetches a new token once (an import can outlive a token's 4 hours). Transient failures
(timeouts, refused connections, 5xx, 429) are retried a few times with a growing pause;
what is still failing then is raised as SourceError, and the import stops where it was:
its progress is kept, and the next run resumes.

The peer is not trusted: a page's body is read as a stream and refused past
`max_page_bytes` (never held whole first), a page with more events than asked is
refused, and every call ends by the import's `deadline` (a monotonic instant): the
clock is checked after every chunk received, so a body trickled a byte at a time ends
there too (SourceDeadline), however quick each read. Remote text in a message is cut
short and stripped of control characters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import orjson

VIEW_SCOPE = "pickpack.pickpack_view"
# What a page's body may hold per event asked for (an Emporix event is about 400 bytes
# of JSON), with a floor for small pages: a 1,000-event page may be 4 MiB.
PAGE_BYTES_PER_EVENT = 4096
MIN_PAGE_BYTES = 1024 * 1024
# What a token answer or an error body may hold: they are small.
SMALL_BODY_BYTES = 64 * 1024
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]+")


def max_page_bytes(size: int) -> int:
    """The most bytes a page of `size` events may take."""
    return max(MIN_PAGE_BYTES, size * PAGE_BYTES_PER_EVENT)


def remote_text(raw: bytes, limit: int = 300) -> str:
    """A peer's text, fit to quote in one line: cut short, control characters made spaces."""
    text = raw[: limit * 4].decode("utf-8", "replace")
    text = _CONTROL.sub(" ", text).strip()
    return text[:limit] + ("..." if len(text) > limit else "")


class SourceError(RuntimeError):
    """The Emporix service refused or failed a call (after the retries), or answered
    what the importer does not accept."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, None when no answer came


class SourceDeadline(SourceError):
    """The import's deadline passed (during a call, or between pages)."""


class _Answer:
    """A response read within its bounds: the status and the body's bytes."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return remote_text(self.content)


def _transient(status: int) -> bool:
    return status >= 500 or status == 429


class EmporixSource:
    def __init__(
        self,
        url: str,
        tenant: str,
        client_id: str,
        client_secret: str,
        *,
        retries: int = 3,
        pause: float = 1.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`deadline`: a `clock()` instant no call may run past (None: no deadline)."""
        self.url = url.rstrip("/")
        self.tenant = tenant
        self._client_id = client_id
        self._client_secret = client_secret
        self._retries = retries
        self._pause = pause
        self._sleep = sleep
        self._timeout = timeout
        self.deadline = deadline
        self._clock = clock
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=10))
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def token(self) -> str:
        response = self._call(
            "POST",
            "/oauth/token",
            SMALL_BODY_BYTES,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "scope": f"tenant={self.tenant} {VIEW_SCOPE}",
            },
        )
        if not response.is_success:
            raise SourceError(f"token refused ({response.status_code}): {response.text}")
        try:
            token = orjson.loads(response.content)["access_token"]
        except (ValueError, KeyError, TypeError):
            raise SourceError("token endpoint answered without an access_token") from None
        self._token = str(token)
        return self._token

    def events_page(self, since: str | None, page: int, size: int) -> list[dict[str, Any]]:
        """One page of the feed, in the feed's order (timestamp, then recording order)."""
        params: dict[str, Any] = {"pageNumber": page, "pageSize": size}
        if since:
            params["timestamp"] = since
        path = f"/pick-pack/{quote(self.tenant, safe='')}/events"
        for renewed in (False, True):
            if self._token is None:
                self.token()
            response = self._call(
                "GET",
                path,
                max_page_bytes(size),
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
            )
            if response.status_code == 401 and not renewed:
                self._token = None  # expired or revoked meanwhile: one new token
                continue
            break
        if not response.is_success:
            raise SourceError(
                f"GET events page {page} failed ({response.status_code}): {response.text}",
                response.status_code,
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SourceError(f"GET events page {page}: the answer is not JSON") from None
        if not isinstance(body, list):
            raise SourceError(f"GET events page {page}: the answer is not a JSON array")
        if len(body) > size:
            raise SourceError(
                f"GET events page {page}: {len(body)} events, more than the {size} asked for"
            )
        return body

    def _call(self, method: str, path: str, limit: int, **kw: Any) -> _Answer:
        attempt = 0
        while True:
            self._check_deadline(f"{method} {path}")
            try:
                response = self._fetch(method, path, limit, **kw)
            except httpx.HTTPError as exc:  # a transport failure, or a body not decodable
                if attempt >= self._retries:
                    raise SourceError(
                        f"{method} {self.url}{path}: {type(exc).__name__} "
                        f"({remote_text(str(exc).encode()) or 'no answer'})"
                    ) from None
            else:
                if not _transient(response.status_code) or attempt >= self._retries:
                    return response
            attempt += 1
            pause = self._pause * attempt
            if self.deadline is not None:
                pause = min(pause, max(0.0, self.deadline - self._clock()))
            self._sleep(pause)

    def _fetch(self, method: str, path: str, limit: int, **kw: Any) -> _Answer:
        """One call, its body read as it arrives: at most `limit` bytes, by the deadline."""
        timeout = self._timeout
        if self.deadline is not None:
            # No single read may wait past the deadline (the clock is checked between them).
            timeout = max(0.1, min(timeout, self.deadline - self._clock()))
        request = self._http.build_request(
            method, path, timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), **kw
        )
        response = self._http.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > limit:
                    raise SourceError(
                        f"{method} {path}: the answer is larger than {limit} bytes "
                        "(--page-size sets what a page may hold)",
                        response.status_code,
                    )
                chunks.append(chunk)
                self._check_deadline(f"{method} {path}")
            return _Answer(response.status_code, b"".join(chunks))
        finally:
            response.close()

    def _check_deadline(self, what: str) -> None:
        if self.deadline is not None and self._clock() >= self.deadline:
            raise SourceDeadline(f"{what}: the import's deadline passed")
