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
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from api.auth import MANAGE, VIEW, local_secret, mint_token
from cli.errors import CommandError, Exit, UsageError
from ledger.config import Settings

# (productId, name, orderUnit, weight-dependent, how many a customer orders)
PRODUCTS: tuple[tuple[str, str, str, bool, tuple[int, int]], ...] = (
    ("apple-gala", "Gala apples", "H87", False, (2, 8)),
    ("banana", "Bananas", "H87", False, (3, 7)),
    ("milk-1l", "Milk 1 l", "H87", False, (1, 4)),
    ("yoghurt-500", "Yoghurt 500 g", "H87", False, (1, 3)),
    ("bread-rye", "Rye bread", "H87", False, (1, 2)),
    ("eggs-10", "Eggs, box of 10", "H87", False, (1, 2)),
    ("water-6", "Water, six bottles", "H87", False, (1, 3)),
    ("coffee-beans", "Coffee beans 1 kg", "H87", False, (1, 2)),
    ("pasta-500", "Pasta 500 g", "H87", False, (1, 5)),
    ("tomato", "Tomatoes", "H87", False, (4, 10)),
    ("gouda", "Gouda, by weight", "GRM", True, (200, 800)),
    ("ham-sliced", "Sliced ham, by weight", "GRM", True, (100, 400)),
    ("salmon", "Salmon fillet, by weight", "GRM", True, (250, 700)),
    ("potatoes", "Potatoes, loose", "KGM", True, (1, 5)),
)
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dario", "Eva", "Femi", "Greta", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Meyer", "Novak", "Okafor", "Rossi", "Silva", "Tanaka", "Weber", "Zhang")
PAUSE = (1.5, 5.0)  # seconds between a scanner's scans at speed 1
RETRY_SHARE = 0.06  # scans sent twice, as after a lost answer
CANCEL_SHARE = 0.06  # orders cancelled half-way
SHORT_SHARE = 0.08  # entries short of stock: the rest cancelled


def delivery_day(count: int, site: str, day: date, rng: random.Random) -> list[dict[str, Any]]:
    """`count` order documents for `site` on `day`, in delivery windows of two hours."""
    orders = []
    for n in range(1, count + 1):
        start = datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(
            hours=2 * rng.randrange(6)
        )
        picks = rng.sample(PRODUCTS, rng.randint(2, 5))
        entries = []
        for product_id, name, unit, weighted, (low, high) in picks:
            entries.append(_entry(product_id, name, unit, weighted, rng.randint(low, high)))
        if rng.random() < 0.3:  # the same product again, as a second line (a promotion)
            product_id, name, unit, weighted, (low, high) = picks[0]
            entries.append(_entry(product_id, name, unit, weighted, rng.randint(low, high)))
        for i, entry in enumerate(entries, 1):
            entry["entryId"] = f"e{i}"
        orders.append(
            {
                "id": f"D{day:%m%d}-{n:03d}",
                "siteCode": site,
                "currency": "EUR",
                "customer": {
                    "firstName": rng.choice(FIRST_NAMES),
                    "lastName": rng.choice(LAST_NAMES),
                },
                "delivery": {
                    "deliveryTimeModel": {"deliveryDate": day.isoformat()},
                    "deliveryWindow": {
                        "deliveryTimeFrom": _iso(start),
                        "deliveryTimeTo": _iso(start + timedelta(hours=2)),
                    },
                },
                "entries": entries,
            }
        )
    return orders


def _entry(product_id: str, name: str, unit: str, weighted: bool, total: int) -> dict[str, Any]:
    return {
        "productId": product_id,
        "productName": name,
        "orderUnit": unit,
        "totalCount": total,
        "weightDependent": weighted,
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def scans_for(entry: dict[str, Any], rng: random.Random) -> list[dict[str, int]]:
    """The amounts a scanner sends for one entry: a few scans, sometimes a short ending."""
    total = int(entry["totalCount"])
    if entry.get("weightDependent"):  # weighed once, a little off the ordered weight
        weighed = max(1, round(total * rng.uniform(0.9, 1.1)))
        return [{"pickedAmount": weighed, "packedAmount": weighed, "canceledAmount": 0}]
    short = rng.random() < SHORT_SHARE and total > 1
    packable = total - 1 if short else total
    scans = []
    while packable > 0:
        step = min(packable, rng.randint(1, 3))
        scans.append({"pickedAmount": step, "packedAmount": step, "canceledAmount": 0})
        packable -= step
    if short:
        scans.append({"pickedAmount": 0, "packedAmount": 0, "canceledAmount": 1})
    return scans


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
    if answer.status_code >= 400:
        said = " ".join(answer.text[:300].split())
        raise DemoStopped(
            f"{what}: the service answered {answer.status_code} {said}; "
            "check --url, --tenant and --token"
        )


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
    rng = random.Random(args.seed)
    orders = delivery_day(args.orders, args.site, day, rng)
    base = args.url.rstrip("/")
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        demo = Demo(client, args.tenant, args.site, args.speed, args.seed)
        demo.register(orders)
        print(f"registered {len(orders)} orders for site {args.site} on {day}")
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
