"""A fake Emporix Order Service for development, demos and tests: a real HTTP server.

It serves what pickpack-ledger calls (POST .../salesorders/{orderId}/calculations, GET
.../salesorders/{orderId}) under any base path, records every request, and can be told,
through its Python API or its /_control endpoints, to misbehave:

- ``POST /_control/orders/{tenant}/{orderId}`` with an order document: register it
  (once any order is registered, calculations for unknown orders answer 404);
- ``POST /_control/fail`` ``{"times": 3, "status": 500, "orderId": null}``: fail N calls;
- ``POST /_control/hang`` ``{"times": 1, "seconds": 5, "orderId": null}``: answer late;
- ``POST /_control/reject`` ``{"orderId": "o1", "message": "...", "status": 400}``: refuse
  every calculations call for that order;
- ``GET /_control/requests`` (what was received) and ``POST /_control/reset``.

``GET .../{tenant}/salesorders`` lists the registered orders as the Order API does
(emporix-order-api.yml, GET-order-retrieve-tenant-orders): filtered by ``q`` (the forms
`field:value`, `field:(v1,v2)`, `field:>=value`, `field:(>="a" AND <="b")`, fields
separated by spaces, dotted paths into the document), ``pageNumber`` from 1,
``pageSize`` (default 16), sorted by id, the match count in ``X-Total-Count``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs

from devtools.http_fake import FakeServer, HTTPFake, JSONHandler, serve_until_interrupted

_LIST_PATH = re.compile(r"^(?:/[^/]+)*?/(?P<tenant>[^/]+)/salesorders/?$")
_CONDITION = re.compile(r'(?P<field>[\w.]+):(?P<expr>\([^)]*\)|"[^"]*"|\S+)')
_COMPARISON = re.compile(r'^(?P<op>>=|<=|>|<)?"?(?P<value>[^"]*)"?$')
_ORDER_PATH = re.compile(
    r"^(?:/[^/]+)*?/(?P<tenant>[^/]+)/salesorders/(?P<order>[^/]+)(?P<calc>/calculations)?/?$"
)


@dataclass
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    tenant: str | None
    order_id: str | None
    headers: dict[str, str]
    body: Any


@dataclass
class _Trouble:
    times: int
    order_id: str | None = None
    status: int = 500
    seconds: float = 0.0

    def take(self, order_id: str | None) -> bool:
        if self.times <= 0 or (self.order_id is not None and self.order_id != order_id):
            return False
        self.times -= 1
        return True


@dataclass
class FakeState:
    """What the fake knows and has been told; guarded by `lock`."""

    orders: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    failures: list[_Trouble] = field(default_factory=list)
    hangs: list[_Trouble] = field(default_factory=list)
    rejections: dict[str, tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def validate_calculation(body: Any) -> str | None:
    """Why a calculations body is invalid, or None: entryId required, amounts integers >= 0."""
    if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
        return "entries: required, a list"
    for i, entry in enumerate(body["entries"]):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("entryId"), str)
            or not entry["entryId"]
        ):
            return f"entries[{i}].entryId: required"
        for key in ("deliveredAmount", "deliveredAmountInPc"):
            value = entry.get(key)
            if key == "deliveredAmountInPc" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"entries[{i}].{key}: must be an integer >= 0"
    return None


class _Handler(JSONHandler):
    server: _Server

    def orders(self) -> FakeOrderService:
        """The fake this request is for (the fake Emporix serves one under /order-v2)."""
        return self.server.fake

    def _body(self) -> Any:
        raw = self.raw_body()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")

    def do_GET(self) -> None:
        fake = self.orders()
        if self.path.startswith("/_control/requests"):
            self.reply(200, [asdict(r) for r in fake.requests()])
            return
        path, _, query = self.path.partition("?")
        listing = _LIST_PATH.match(path)
        if listing is not None:
            tenant = listing.group("tenant")
            fake._record(Received("GET", self.path, tenant, None, dict(self.headers), None))
            status, page, total = fake.list_orders(tenant, parse_qs(query))
            self.reply(status, page, {"X-Total-Count": str(total)})
            return
        self._order_call("GET", None)

    def do_POST(self) -> None:
        fake = self.orders()
        body = self._body()
        if self.path.startswith("/_control/"):
            self._control(fake, body if isinstance(body, dict) else {})
            return
        self._order_call("POST", body)

    def _control(self, fake: FakeOrderService, body: dict[str, Any]) -> None:
        parts = self.path.strip("/").split("/")
        if parts[1:2] == ["orders"] and len(parts) == 4:
            fake.register_order(parts[2], parts[3], body)
        elif parts[1:] == ["fail"]:
            fake.fail(int(body.get("times", 1)), int(body.get("status", 500)), body.get("orderId"))
        elif parts[1:] == ["hang"]:
            fake.hang(
                int(body.get("times", 1)), float(body.get("seconds", 60)), body.get("orderId")
            )
        elif parts[1:] == ["reject"]:
            fake.reject(
                str(body["orderId"]),
                str(body.get("message", "rejected")),
                int(body.get("status", 400)),
            )
        elif parts[1:] == ["reset"]:
            fake.reset()
        else:
            self.reply(404, {"status": 404, "message": f"no control endpoint {self.path}"})
            return
        self.reply(200, {"status": "ok"})

    def _order_call(self, method: str, body: Any) -> None:
        fake = self.orders()
        m = _ORDER_PATH.match(self.path.split("?", 1)[0])
        tenant, order_id = (m.group("tenant"), m.group("order")) if m else (None, None)
        fake._record(Received(method, self.path, tenant, order_id, dict(self.headers), body))
        status, answer, delay = fake._decide(
            method, m is not None and bool(m.group("calc")), tenant, order_id, body
        )
        if m is None:
            status, answer = 404, {"status": 404, "message": f"no route {method} {self.path}"}
        if delay:
            time.sleep(delay)
        self.reply(status, answer)


class _Server(FakeServer):
    fake: FakeOrderService


class FakeOrderService(HTTPFake):
    """The fake as a Python object: start(), stop(), and the knobs tests turn."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = FakeState()
        server = _Server((host, port), _Handler)
        server.fake = self
        super().__init__(server)

    # -- knobs --------------------------------------------------------------------------

    def register_order(self, tenant: str, order_id: str, document: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.orders[(tenant, order_id)] = document

    def fail(self, times: int, status: int = 500, order_id: str | None = None) -> None:
        """The next `times` calculations calls (for `order_id`, or any) answer `status`."""
        with self.state.lock:
            self.state.failures.append(_Trouble(times, order_id, status))

    def hang(self, times: int, seconds: float, order_id: str | None = None) -> None:
        """The next `times` calculations calls answer only after `seconds`."""
        with self.state.lock:
            self.state.hangs.append(_Trouble(times, order_id, seconds=seconds))

    def reject(self, order_id: str, message: str, status: int = 400) -> None:
        """Every calculations call for `order_id` answers `status` with `message`."""
        with self.state.lock:
            self.state.rejections[order_id] = (status, message)

    def reset(self) -> None:
        with self.state.lock:
            self.state.received.clear()
            self.state.failures.clear()
            self.state.hangs.clear()
            self.state.rejections.clear()
            self.state.orders.clear()

    def list_orders(self, tenant: str, query: dict[str, list[str]]) -> tuple[int, Any, int]:
        """(status, the page of matching orders, how many match): the Order API's listing."""
        try:
            page = int(query.get("pageNumber", ["1"])[-1])
            size = int(query.get("pageSize", ["16"])[-1])
        except ValueError:
            return 400, {"status": 400, "message": "pageNumber, pageSize: integers"}, 0
        if page < 1 or size < 1:
            return 400, {"status": 400, "message": "pageNumber, pageSize: at least 1"}, 0
        conditions = _CONDITION.findall(query.get("q", [""])[-1])
        with self.state.lock:
            docs = [d for (t, _), d in sorted(self.state.orders.items()) if t == tenant]
        chosen = [d for d in docs if all(_holds(d, f, e) for f, e in conditions)]
        return 200, chosen[(page - 1) * size : page * size], len(chosen)

    def requests(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def calculations(self, order_id: str | None = None) -> list[Received]:
        """The calculations requests received, optionally for one order, in arrival order."""
        return [
            r
            for r in self.requests()
            if r.method == "POST"
            and r.order_id is not None
            and r.path.rstrip("/").endswith("/calculations")
            and (order_id is None or r.order_id == order_id)
        ]

    # -- behaviour ----------------------------------------------------------------------

    def _record(self, received: Received) -> None:
        with self.state.lock:
            self.state.received.append(received)

    def _decide(
        self, method: str, calc: bool, tenant: str | None, order_id: str | None, body: Any
    ) -> tuple[int, Any, float]:
        with self.state.lock:
            s = self.state
            delay = next((h.seconds for h in s.hangs if h.take(order_id)), 0.0)
            known = (tenant or "", order_id or "") in s.orders
            if method == "GET":
                if not known:
                    return 404, {"status": 404, "message": f"Order {order_id} not found"}, delay
                return 200, s.orders[(tenant or "", order_id or "")], delay
            if not calc:
                return 405, {"status": 405, "message": "method not allowed"}, delay
            failure = next((f for f in s.failures if f.take(order_id)), None)
            if failure is not None:
                return (
                    failure.status,
                    {"status": failure.status, "message": "Simulated failure"},
                    delay,
                )
            if order_id in s.rejections:
                status, message = s.rejections[order_id]
                return status, {"status": status, "message": message}, delay
            if s.orders and not known:
                return 404, {"status": 404, "message": f"Order {order_id} not found"}, delay
            problem = validate_calculation(body)
            if problem is not None:
                return (
                    400,
                    {"status": 400, "message": problem, "type": "validation_violation"},
                    delay,
                )
            return 200, None, delay


def _field(doc: Any, path: str) -> Any:
    for name in path.split("."):
        doc = doc.get(name) if isinstance(doc, dict) else None
    return doc


def _compare(actual: Any, term: str) -> bool:
    m = _COMPARISON.match(term.strip())
    if m is None or actual is None:
        return False
    op, value = m.group("op"), m.group("value")
    have = str(actual)
    if op == ">=":
        return have >= value
    if op == "<=":
        return have <= value
    if op == ">":
        return have > value
    if op == "<":
        return have < value
    return have == value


def _holds(doc: Any, path: str, expr: str) -> bool:
    """One q condition; ISO dates compare as text, which orders them correctly."""
    actual = _field(doc, path)
    if expr.startswith("(") and expr.endswith(")"):
        inner = expr[1:-1]
        if " AND " in inner:
            return all(_compare(actual, t) for t in inner.split(" AND "))
        return any(_compare(actual, t) for t in inner.split(","))
    return _compare(actual, expr)


def _run(args: argparse.Namespace) -> int:
    fake = FakeOrderService(args.host, args.port)
    return serve_until_interrupted(
        fake, f"fake Order Service on {fake.url} (set PICKPACK_ORDER_SERVICE_URL={fake.url})"
    )


def add_commands(sub: Any) -> None:
    """`pickpack fake-order-service [--host] [--port]`."""
    cmd = sub.add_parser("fake-order-service", help="run a fake Order Service for dev and demos")
    cmd.add_argument("--host", default="127.0.0.1")
    cmd.add_argument("--port", type=int, default=8090)
    cmd.set_defaults(func=_run)
