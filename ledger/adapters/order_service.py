"""The Order Service client: a thin httpx adapter that turns each call into an Answer.

It never raises for what the network or the Order Service does: timeouts and refused
connections become Answer(None, ...), so the retry decision stays in ledger.domain.recalculation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from ledger.domain.recalculation import SUCCESS_MESSAGE, Answer, error_message


class OrderServiceClient:
    """POST {base}/{tenant}/salesorders/{orderId}/calculations with a bearer token."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        )

    def calculate(self, tenant: str, order_id: str, body: dict[str, Any]) -> Answer:
        path = f"/{quote(tenant, safe='')}/salesorders/{quote(order_id, safe='')}/calculations"
        try:
            response = self._http.post(path, json=body)
        except httpx.TimeoutException as exc:
            return Answer(None, f"Order Service timed out ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return Answer(None, f"Order Service unreachable ({type(exc).__name__}: {exc})")
        if response.is_success:
            return Answer(response.status_code, SUCCESS_MESSAGE)
        return Answer(response.status_code, error_message(response.status_code, response.text))

    def close(self) -> None:
        self._http.close()


def sales_order_pages(
    base_url: str, token: str | None, tenant: str, q: str, page_size: int = 100
) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
    """`GET {base}/{tenant}/salesorders?q=...`, page by page (pageNumber from 1, as the
    Order API counts), sorted by id so pages do not shift; each page with the match
    count from X-Total-Count (None if absent). Raises httpx.HTTPError on a failed call."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    path = f"/{quote(tenant, safe='')}/salesorders"
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=60) as client:
        page = 1
        while True:
            response = client.get(
                path, params={"q": q, "pageNumber": page, "pageSize": page_size, "sort": "id"}
            )
            response.raise_for_status()
            orders = response.json()
            if not isinstance(orders, list):
                raise httpx.DecodingError("salesorders: expected a JSON array")
            total = response.headers.get("X-Total-Count")
            yield orders, int(float(total)) if total else None
            if len(orders) < page_size:
                return
            page += 1
