"""An Emporix-compatible service as a source: its token endpoint and its event feed.

Thin httpx adapter. `EmporixSource.token()` asks `{url}/oauth/token` for a
client-credentials token (form-encoded, the OAuth Service's contract; the scope names the
tenant and the view scope, as Emporix expects); `events_page` reads one page of
`GET {url}/pick-pack/{tenant}/events` (timestamp, pageNumber, pageSize). A 401 on a page
fetches a new token once (an import can outlive a token's 4 hours). Transient failures
(timeouts, refused connections, 5xx, 429) are retried a few times with a growing pause;
what is still failing then is raised as SourceError, and the import stops where it was:
its progress is kept, and the next run resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

VIEW_SCOPE = "pickpack.pickpack_view"


class SourceError(RuntimeError):
    """The Emporix service refused or failed a call (after the retries)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, None when no answer came


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
    ) -> None:
        self.url = url.rstrip("/")
        self.tenant = tenant
        self._client_id = client_id
        self._client_secret = client_secret
        self._retries = retries
        self._pause = pause
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=10))
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def token(self) -> str:
        response = self._call(
            "POST",
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "scope": f"tenant={self.tenant} {VIEW_SCOPE}",
            },
        )
        if not response.is_success:
            raise SourceError(f"token refused ({response.status_code}): {response.text[:300]}")
        try:
            token = response.json()["access_token"]
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
                "GET", path, params=params, headers={"Authorization": f"Bearer {self._token}"}
            )
            if response.status_code == 401 and not renewed:
                self._token = None  # expired or revoked meanwhile: one new token
                continue
            break
        if not response.is_success:
            raise SourceError(
                f"GET events page {page} failed ({response.status_code}): {response.text[:300]}",
                response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"GET events page {page}: not JSON") from None
        if not isinstance(body, list):
            raise SourceError(f"GET events page {page}: expected a JSON array")
        return body

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if attempt >= self._retries:
                    raise SourceError(f"{method} {self.url}{path}: {exc!r}") from None
            else:
                if not _transient(response.status_code) or attempt >= self._retries:
                    return response
            attempt += 1
            self._sleep(self._pause * attempt)
