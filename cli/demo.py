"""`pickpack demo`: a simulated delivery day against a running service, to watch on /board.

A client like any other, over HTTP only: it registers a day's orders (several entries
each, some products in two entries, pieces and weights), then scanners pack them at a
human pace: each takes the next open order, assigns itself, scans its entries in a few
scans each, now and then retries a scan whose answer it "lost" (same eventId: the
service records it once), cancels an order whose customer called, and finishes the
rest. `--speed` multiplies the pace (the tests run it at 1000).
"""

from __future__ import annotations

import argparse
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from cli.errors import CommandError, Exit, UsageError
from devtools.demo_day import (
    CANCEL_SHARE,
    FIRST_NAMES,
    LAST_NAMES,
    PAUSE,
    RETRY_SHARE,
    _iso,
    delivery_day,
    order_number,
    scans_for,
)
from ledger.config import Settings
from ledger.services.signing import MANAGE, VIEW, local_secret, mint_token


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


class Demo:
    def __init__(self, client: httpx.Client, tenant: str, site: str, speed: float, seed: int):
        self.client = client
        self.tenant = tenant
        self.site = site
        self.speed = speed
        self.seed = seed
        self.tally = Tally()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def start(self, orders: list[dict[str, Any]], scanners: int) -> list[threading.Thread]:
        """`scanners` threads packing `orders`, each taking the next open one; the first
        error stops them all (in `errors`)."""
        work: queue.Queue[dict[str, Any]] = queue.Queue()
        for order in orders:
            work.put(order)

        def scanner(number: int) -> None:
            try:
                self.scanner(number, work)
            except Exception as exc:
                self.errors.append(exc)
                self.stop.set()

        threads = [
            threading.Thread(target=scanner, args=(n,), daemon=True) for n in range(1, scanners + 1)
        ]
        for thread in threads:
            thread.start()
        return threads

    def path(self, rest: str) -> str:
        return f"/pick-pack/{self.tenant}/{rest}"

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request, retried on a lost connection or a 5xx as a scanner would (the
        same body: every write here is idempotent)."""
        for attempt in range(6):
            try:
                answer = self.client.request(method, path, **kw)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code < 500:
                return answer
            self.tally.add("retries")
            time.sleep(min(5.0, 0.2 * 2**attempt))
        raise DemoStopped(
            f"{method} {path}: the service did not answer in 6 tries; "
            f"check that it runs at {self.client.base_url}"
        )

    def pause(self, rng: random.Random) -> None:
        self.stop.wait(rng.uniform(*PAUSE) / self.speed)

    def first_free_number(self, day: date) -> int:
        """The first order number of `day` after every demo order already registered: a
        second run on the same day packs new orders instead of meeting the first run's
        (some of them CANCELLED, which refuse every write)."""
        answer = self.call(
            "GET",
            self.path("orders"),
            params={
                "siteCode": self.site,
                "deliveryDate": day.isoformat(),
                "includeCancelled": "true",
            },
        )
        _check(answer, "reading the day's orders")
        prefix = order_number(day, 0)[:-3]
        taken = [
            int(item["orderId"][len(prefix) :])
            for item in answer.json()
            if str(item.get("orderId", "")).startswith(prefix)
            and item["orderId"][len(prefix) :].isdigit()
        ]
        n = max(taken, default=0) + 1
        # Another site's demo may hold the next numbers of that day: skip those too.
        while (
            self.call("GET", self.path(f"orders/{quote(order_number(day, n))}")).status_code == 200
        ):
            n += 1
        return n

    def register(self, orders: list[dict[str, Any]]) -> None:
        for order in orders:
            answer = self.call("PUT", self.path(f"orders/{quote(order['id'])}"), json=order)
            _check(answer, f"registering {order['id']}")

    def scanner(self, number: int, work: queue.Queue[dict[str, Any]]) -> None:
        rng = random.Random(self.seed * 1000 + number)
        me = {
            "id": f"picker{number:02d}",
            "siteCode": self.site,
            "firstName": FIRST_NAMES[number % len(FIRST_NAMES)],
            "lastName": LAST_NAMES[number % len(LAST_NAMES)],
        }
        while not self.stop.is_set():
            try:
                order = work.get_nowait()
            except queue.Empty:
                return
            self.pack(order, me, rng)

    def pack(self, order: dict[str, Any], me: dict[str, Any], rng: random.Random) -> None:
        order_id = quote(order["id"])
        _check(
            self.call("POST", self.path(f"orders/{order_id}/assignees"), json=me),
            f"assigning {order['id']}",
        )
        cancel_after = None
        if rng.random() < CANCEL_SHARE:
            cancel_after = rng.randrange(len(order["entries"]))
        for index, entry in enumerate(order["entries"]):
            if index == cancel_after:
                self.pause(rng)
                answer = self.call(
                    "PATCH",
                    self.path(f"orders/{order_id}"),
                    json={"packingStatus": "CANCELLED"},
                )
                _check(answer, f"cancelling {order['id']}")
                self.tally.add("cancelled")
                return
            for amounts in scans_for(entry, rng):
                self.pause(rng)
                if self.stop.is_set():
                    return
                self.scan(order, entry, amounts, me, rng)
        self.pause(rng)
        _check(self.call("POST", self.path(f"orders/{order_id}/finish")), f"finishing {order_id}")
        self.tally.add("finished")

    def scan(
        self,
        order: dict[str, Any],
        entry: dict[str, Any],
        amounts: dict[str, int],
        me: dict[str, Any],
        rng: random.Random,
    ) -> None:
        body = {
            "eventId": f"{order['id']}-{entry['entryId']}-{rng.getrandbits(48):012x}",
            "orderNumber": order["id"],
            "productId": entry["productId"],
            "unit": entry["orderUnit"],
            "site": self.site,
            "supplierId": me["id"],
            "timestamp": _iso(datetime.now(UTC)),
            **amounts,
        }
        sends = 2 if rng.random() < RETRY_SHARE else 1  # the answer "lost": sent again
        for _ in range(sends):
            _check(self.call("POST", self.path("events"), json=body), f"scan {body['eventId']}")
            self.tally.add("scans")
        if sends == 2:
            self.tally.add("resent")


class DemoStopped(CommandError):
    """The service refused a request or stopped answering: the day cannot go on."""

    code = Exit.ITEMS_REFUSED


def _check(answer: httpx.Response, what: str) -> None:
    """A refusal as one sentence that names its cause and what to do about it."""
    if answer.status_code < 400:
        return
    said = " ".join(answer.text[:300].split())
    status = answer.status_code
    if status == 401:
        hint = (
            "the token was refused (malformed, expired or signed with another secret): "
            "check --token"
        )
    elif status == 403:
        hint = (
            "the token may not act on this tenant: check --tenant and the token's scopes "
            "(view and manage)"
        )
    elif status == 404:
        hint = "no such path on the service: check --url (the service's base URL) and --tenant"
    elif status == 409 and "CANCELLED" in said:
        hint = (
            "that order was cancelled earlier, and a cancelled order refuses every write; "
            "pick another --date or --site"
        )
    elif status == 409:
        hint = "it conflicts with what the service recorded before"
    elif status == 400:
        hint = "the service found the request invalid (the message above names the field)"
    else:
        hint = "see the service's log for this request"
    raise DemoStopped(f"{what}: the service answered {status} {said}; {hint}")


def _token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    settings = Settings.from_env()
    secret = settings.jwt_secret or local_secret(settings.data_dir)
    if secret is None:
        raise UsageError("no token: pass --token (the service checks tokens with JWKS)")
    return mint_token(secret, args.tenant, [VIEW, MANAGE], subject="demo", ttl_seconds=86400)


def run(args: argparse.Namespace) -> int:
    day = date.fromisoformat(args.date) if args.date else date.today()
    token = _token(args)
    headers = {"Authorization": f"Bearer {token}", "saas-token": "demo"}
    base = args.url.rstrip("/")
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        demo = Demo(client, args.tenant, args.site, args.speed, args.seed)
        first = demo.first_free_number(day)
        # The same seed, the same day: a run on a fresh store is the same every time; a
        # later run on the same day gets its own orders (and numbers after the last).
        rng = random.Random(args.seed if first == 1 else f"{args.seed}-{first}")
        orders = delivery_day(args.orders, args.site, day, rng, first)
        demo.register(orders)
        numbers = f"{orders[0]['id']} to {orders[-1]['id']}"
        print(f"registered {len(orders)} orders for site {args.site} on {day} ({numbers})")
        fragment = f"tenant={args.tenant}&token={token}&site={args.site}&date={day}"
        print(f"watch them on the board:\n\n  {base}/board#{fragment}\n", flush=True)
        threads = demo.start(orders, args.scanners)
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        except KeyboardInterrupt:
            demo.stop.set()
            raise
    counts = demo.tally.counts
    if demo.errors:
        raise demo.errors[0]
    print(
        f"done: {counts['scans']} scans sent ({counts['resent']} sent twice), "
        f"{counts['finished']} orders finished, {counts['cancelled']} cancelled"
    )
    return 0


def add_commands(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="simulate a delivery day against a running service (watch it on /board)"
    )
    demo.add_argument("--tenant", default="demo")
    demo.add_argument("--orders", type=_positive, default=40)
    demo.add_argument("--scanners", type=_positive, default=8)
    demo.add_argument(
        "--speed", type=_speed, default=1.0, help="pace multiplier (2: twice as fast)"
    )
    demo.add_argument("--url", default="http://127.0.0.1:8000", help="the running service")
    demo.add_argument("--token", help="a token with both scopes (default: minted locally)")
    demo.add_argument("--site", default="main")
    demo.add_argument("--date", help="delivery date YYYY-MM-DD (default: today)")
    demo.add_argument("--seed", type=int, default=7, help="the same seed, the same day")
    demo.set_defaults(func=run)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _speed(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return number
