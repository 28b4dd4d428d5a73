"""A fake Emporix (OAuth Service + Pick-Pack event feed) for tests and demos: real HTTP.

It serves the two operations `pickpack emporix import-events` and `reconcile` call:

- ``POST /oauth/token``: client credentials, form-encoded or JSON; the client must be
  registered (``add_client``) and the scope must name its tenant (``tenant=T ...``);
  answers Emporix's body with an opaque bearer token.
- ``GET /pick-pack/{tenant}/events``: the spec's OrderEntryEventResponse items, strictly
  after ``timestamp`` when given, ordered by (timestamp, recording order), paged by
  ``pageNumber`` (from 1, 0 read as 1, as this service reads it; or from 0 with
  ``first_page=0``) and ``pageSize`` (at most 20000, absent or 0 meaning 20000). Needs a
  token for that tenant.
- ``POST /pick-pack/{tenant}/events``: records one event (a scanner still on Emporix
  while both run side by side); the user is the token's client.
- the Order Service under ``/order-v2`` (as on Emporix's own host): ``GET
  /order-v2/{tenant}/salesorders`` (the open-orders listing) and ``.../salesorders/{id}``,
  ``POST .../calculations``: the fake Order Service (devtools/fake_order_service.py),
  holding the seeded history's sales orders.

``pickpack fake-emporix --tenant T --client ID:SECRET --days N`` seeds it from the command
line for a cutover rehearsal: a client, N days of scans (devtools/emporix_history.py) and
the matching sales orders, today's still open.

Knobs, from Python or ``POST /_control/...``: ``add_events`` (seed), ``fail_page(page,
times, status)`` (that page answers ``status`` the next ``times`` times: an outage
mid-way), ``requests()`` (what was received).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from devtools import fake_order_service
from devtools.emporix_history import history
from devtools.fake_order_service import FakeOrderService
from devtools.http_fake import FakeServer, HTTPFake, serve_until_interrupted

MAX_PAGE_SIZE = 20_000
TOKEN_LIFETIME = 14399


def _moment(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp.replace("z", "Z"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _State:
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (secret, tenant)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (tenant, client)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[int, list[int]] = field(default_factory=dict)  # page -> [times, status]
    received: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


ORDER_SERVICE_PATH = "/order-v2"


class _Handler(fake_order_service._Handler):
    server: _Server  # type: ignore[assignment]

    def orders(self) -> FakeOrderService:
        return self.server.fake.order_service

    def _for_order_service(self) -> bool:
        return urlsplit(self.path).path.startswith(ORDER_SERVICE_PATH + "/")

    def do_POST(self) -> None:
        if self._for_order_service():
            super().do_POST()
            return
        fake = self.server.fake
        path = urlsplit(self.path).path
        fake._record("POST", self.path)
        raw = self.raw_body()
        if path == "/oauth/token":
            status, body = fake._token(raw, self.headers.get("Content-Type") or "")
        elif path.startswith("/_control/"):
            status, body = fake._control(path, json.loads(raw or b"{}"))
        else:
            status, body = fake._post_event(path, self.headers.get("Authorization"), raw)
        self.reply(status, body)

    def do_GET(self) -> None:
        if self._for_order_service():
            super().do_GET()
            return
        fake = self.server.fake
        fake._record("GET", self.path)
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, body = fake._events(parts.path, self.headers.get("Authorization"), query)
        self.reply(status, body)


class _Server(FakeServer):
    fake: FakeEmporix


def _fault(status: int, message: str) -> tuple[int, Any]:
    return status, {"fault": {"faultstring": message, "detail": {"errorcode": str(status)}}}


class FakeEmporix(HTTPFake):
    """The fake as a Python object: start(), stop(), and the knobs tests turn."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, first_page: int = 1) -> None:
        # The number of the first page: 1 as this service counts (0 read as 1), or 0.
        self.first_page = first_page
        self.state = _State()
        # The Order Service's state and rules, served on this host under /order-v2; its
        # own listening socket is not needed.
        self.order_service = FakeOrderService(host, 0)
        self.order_service._server.server_close()
        server = _Server((host, port), _Handler)
        server.fake = self
        super().__init__(server)

    # -- knobs --------------------------------------------------------------------------

    def add_client(self, client_id: str, secret: str, tenant: str) -> None:
        with self.state.lock:
            self.state.clients[client_id] = (secret, tenant)

    def add_events(self, tenant: str, events: list[dict[str, Any]]) -> None:
        """Seed the feed with OrderEntryEventResponse items (recorded in this order)."""
        with self.state.lock:
            self.state.events.setdefault(tenant, []).extend(dict(e) for e in events)

    def fail_page(self, page: int, times: int = 1, status: int = 500) -> None:
        """GET events with pageNumber `page` answers `status`, the next `times` times."""
        with self.state.lock:
            self.state.failures[page] = [times, status]

    def requests(self) -> list[tuple[str, str]]:
        with self.state.lock:
            return list(self.state.received)

    # -- behaviour ----------------------------------------------------------------------

    def _record(self, method: str, path: str) -> None:
        with self.state.lock:
            self.state.received.append((method, path))

    def _control(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/_control/clients":
            self.add_client(str(body["client_id"]), str(body["client_secret"]), body["tenant"])
        elif path == "/_control/events":
            self.add_events(str(body["tenant"]), list(body["events"]))
        elif path == "/_control/fail":
            self.fail_page(int(body["page"]), int(body.get("times", 1)), body.get("status", 500))
        else:
            return 404, {"message": f"no control endpoint {path}"}
        return 200, {"status": "ok"}

    def _token(self, raw: bytes, content_type: str) -> tuple[int, Any]:
        if content_type.split(";")[0].strip().lower() == "application/json":
            try:
                form = {k: str(v) for k, v in json.loads(raw or b"{}").items()}
            except (ValueError, AttributeError):
                return 400, {"error": "invalid_request"}
        else:
            form = dict(parse_qsl(raw.decode()))
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        with self.state.lock:
            known = self.state.clients.get(form.get("client_id", ""))
            if known is None or not secrets.compare_digest(known[0], form.get("client_secret", "")):
                return 401, {"error": "invalid_client"}
            scopes = form.get("scope", "").split()
            if f"tenant={known[1]}" not in scopes:
                return 400, {"error": "invalid_scope"}
            token = secrets.token_urlsafe(24)
            self.state.tokens[token] = (known[1], form["client_id"])
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "session_idle_time": 120,
            "refresh_token": "",
            "refresh_token_expires_in": 0,
            "scope": " ".join(scopes),
        }

    def _caller(self, path: str, authorization: str | None) -> tuple[str, str, str] | None:
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "pick-pack" or parts[2] != "events":
            return None
        token = (authorization or "").removeprefix("Bearer ").strip()
        with self.state.lock:
            tenant, client = self.state.tokens.get(token, ("", ""))
        return parts[1], tenant, client

    def _events(
        self, path: str, authorization: str | None, query: dict[str, str]
    ) -> tuple[int, Any]:
        caller = self._caller(path, authorization)
        if caller is None:
            return 404, {"message": f"no route GET {path}"}
        tenant, granted, _ = caller
        if not granted:
            return _fault(401, "Invalid access token")
        if granted != tenant:
            return 403, {"status": 403, "message": "tenant not allowed"}
        try:
            page = int(query.get("pageNumber", self.first_page))
            if page < 0:
                raise ValueError("pageNumber: at least 0")
            page = page + 1 - self.first_page if self.first_page == 0 else max(page, 1)
            size = int(query.get("pageSize", 0)) or MAX_PAGE_SIZE
            after = _moment(query["timestamp"]) if "timestamp" in query else None
        except ValueError as exc:
            return 400, {"status": 400, "message": str(exc)}
        if not 0 < size <= MAX_PAGE_SIZE:
            return 400, {"status": 400, "message": "pageSize: at most 20000"}
        with self.state.lock:
            failure = self.state.failures.get(page)
            if failure and failure[0] > 0:
                failure[0] -= 1
                return failure[1], {"status": failure[1], "message": "Simulated failure"}
            events = list(self.state.events.get(tenant, []))
        # sorted() is stable: events with equal timestamps keep their recording order.
        chosen = sorted(
            (e for e in events if after is None or _moment(e["timestamp"]) > after),
            key=lambda e: _moment(e["timestamp"]),
        )
        return 200, chosen[(page - 1) * size : page * size]

    def _post_event(self, path: str, authorization: str | None, raw: bytes) -> tuple[int, Any]:
        caller = self._caller(path, authorization)
        if caller is None:
            return 404, {"message": f"no route POST {path}"}
        tenant, granted, client = caller
        if not granted:
            return _fault(401, "Invalid access token")
        if granted != tenant:
            return 403, {"status": 403, "message": "tenant not allowed"}
        event = json.loads(raw or b"{}")
        if not isinstance(event, dict) or not event.get("eventId"):
            return 400, {"status": 400, "message": "eventId: required"}
        self.add_events(tenant, [{**event, "user": client}])
        return 200, {"message": "Success", "code": 200}


def _client(spec: str, tenant: str | None) -> tuple[str, str, str]:
    parts = spec.split(":", 2)
    if len(parts) == 2 and tenant:
        return parts[0], parts[1], tenant
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(
            f"--client {spec!r}: ID:SECRET:TENANT (or ID:SECRET with --tenant)"
        )
    return parts[0], parts[1], parts[2]


def seed(
    fake: FakeEmporix,
    tenant: str,
    site: str,
    days: int,
    orders: int,
    until: date,
    seed_value: int = 7,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Give `tenant` a made-up history: (sales orders, events) added."""
    made = history(site, days, orders, until, now or datetime.now(UTC), seed_value)
    fake.add_events(tenant, made.events)
    for order in made.sales_orders:
        fake.order_service.register_order(tenant, order["id"], order)
    return len(made.sales_orders), len(made.events)


def _run(args: argparse.Namespace) -> int:
    fake = FakeEmporix(args.host, args.port)
    for spec in args.client or []:
        try:
            client_id, secret, tenant = _client(spec, args.tenant)
        except argparse.ArgumentTypeError as exc:
            print(f"pickpack: {exc}", file=sys.stderr)
            return 2
        fake.add_client(client_id, secret, tenant)
    lines = [f"fake Emporix on {fake.url}"]
    if args.tenant and args.days:
        until = date.fromisoformat(args.until) if args.until else datetime.now(UTC).date()
        orders, events = seed(
            fake, args.tenant, args.site, args.days, args.orders, until, args.seed
        )
        first = until - timedelta(days=args.days - 1)
        lines.append(
            f"  tenant {args.tenant}: {events} scans of {orders} orders at site {args.site}, "
            f"delivered {first} to {until} (those of {until} still open)"
        )
    lines.append(f"  Order Service: {fake.url}{ORDER_SERVICE_PATH}")
    return serve_until_interrupted(fake, "\n".join(lines))


def add_commands(sub: Any) -> None:
    """`pickpack fake-emporix`: a fake Emporix, seeded from the command line."""
    cmd = sub.add_parser(
        "fake-emporix",
        help="run a fake Emporix (token endpoint, event feed, Order Service) for rehearsals",
        description="A fake Emporix on one port: the OAuth token endpoint, the Pick-Pack "
        "event feed and, under /order-v2, the Order Service. With --tenant and --client it "
        "is ready for a cutover rehearsal (docs/how-to/cutover.md): a client, --days days of "
        "scans with pieces and weighed goods, and the matching sales orders (the last "
        "day's still open). Stop it with Ctrl+C.",
    )
    cmd.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    cmd.add_argument(
        "--port", type=int, default=8091, help="port to listen on (default: %(default)s)"
    )
    cmd.add_argument(
        "--client",
        action="extend",
        nargs="+",
        metavar="ID:SECRET[:TENANT]",
        help="API clients that may get tokens (the tenant defaults to --tenant)",
    )
    cmd.add_argument("--tenant", help="the tenant whose history is seeded")
    cmd.add_argument(
        "--days",
        type=int,
        default=3,
        help="days of history for --tenant, ending with --until (default: %(default)s; 0: none)",
    )
    cmd.add_argument(
        "--orders", type=int, default=12, help="orders per delivery day (default: %(default)s)"
    )
    cmd.add_argument("--site", default="main", help="the orders' site code (default: %(default)s)")
    cmd.add_argument(
        "--until",
        metavar="YYYY-MM-DD",
        help="the last delivery day, its orders open (default: today, UTC)",
    )
    cmd.add_argument(
        "--seed", type=int, default=7, help="the same seed, the same history (default: %(default)s)"
    )
    cmd.set_defaults(func=_run)
