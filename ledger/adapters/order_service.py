"""The Order Service client: a thin httpx adapter that turns each call into an Answer.

It never raises for what the network or the Order Service does: timeouts and refused
connections become Answer(None, ...), so the retry decision stays in ledger.domain.recalculation.
"""

from __future__ import annotations

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
