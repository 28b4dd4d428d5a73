"""`pickpack orders import FILE | --from-order-service (ID... | --site S --from-date D
[--to-date D])`: register orders in bulk.

With --site, the open orders (CREATED, CONFIRMED) of that site whose delivery date falls
in the window are listed through the Order Service's `GET /{tenant}/salesorders` (its
`q` query, page by page); each listed salesorder is mapped and registered as it comes.

Each order is registered through the same decision as `PUT /orders/{orderId}`
(ledger.domain.orders.register under the store's lock), so importing is idempotent and a
CANCELLED order is reported and skipped, never re-opened.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cli.errors import CommandError, Exit, UsageError
from ledger.domain.errors import DomainError
from ledger.domain.order_document import normalize
from ledger.domain.order_import import NotAnOrder, from_sales_order, open_orders_query
from ledger.services import order_commands


def _from_file(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise CommandError(
            f"{path} holds no JSON array: give a JSON array of Order documents", Exit.FILE
        )
    return data


def _from_order_service(
    base_url: str, token: str | None, tenant: str, ids: Iterable[str]
) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(orderId, Order document or None, error) per id, fetched one at a time."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=30) as client:
        for order_id in ids:
            try:
                resp = client.get(f"/{tenant}/salesorders/{order_id}")
                resp.raise_for_status()
                yield order_id, from_sales_order(resp.json()), None
            except (httpx.HTTPError, ValueError, NotAnOrder) as exc:
                yield order_id, None, str(exc)


def _listed(
    base_url: str, token: str | None, tenant: str, q: str, on_total: Any
) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(orderId, Order document or None, error) per listed salesorder."""
    import httpx

    from ledger.adapters.order_service import sales_order_pages

    try:
        for orders, total in sales_order_pages(base_url, token, tenant, q):
            if total is not None:
                on_total(total)
            for order in orders:
                order_id = str(order.get("id", "")) if isinstance(order, dict) else ""
                try:
                    yield order_id, from_sales_order(order), None
                except NotAnOrder as exc:
                    yield order_id, None, str(exc)
    except (httpx.HTTPError, ValueError) as exc:
        yield "", None, f"listing salesorders failed: {exc}"


def _import(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bootstrap.opened import opened
    from ledger.config import Settings

    console = Console(stderr=True)
    settings = Settings.from_env()
    from_service = args.from_order_service is not None
    if bool(args.file) == from_service:
        raise UsageError("give either FILE or --from-order-service, not both")
    if from_service and bool(args.from_order_service) == bool(args.site):
        raise UsageError("--from-order-service takes either IDs or --site and --from-date")
    if bool(args.site) != bool(args.from_date) or (args.to_date and not args.site):
        raise UsageError("--site and --from-date go together (--to-date with them)")
    source: Iterable[tuple[str, dict[str, Any] | None, str | None]]
    total: int | None
    totals: list[int] = []
    if args.file:
        docs = _from_file(Path(args.file))
        source = [(str(d.get("id", "")) if isinstance(d, dict) else "", d, None) for d in docs]
        total = len(docs)
    else:
        if not settings.order_service_url:
            raise UsageError(
                "PICKPACK_ORDER_SERVICE_URL is not set: set it to the Order Service's base "
                "URL to import from it"
            )
    if args.site:
        try:
            q = open_orders_query(args.site, args.from_date, args.to_date)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        assert settings.order_service_url is not None
        source = _listed(
            settings.order_service_url,
            settings.order_service_token,
            args.tenant,
            q,
            totals.append,
        )
        total = None  # known once the first page has answered (X-Total-Count)
    elif not args.file:
        assert settings.order_service_url is not None
        source = _from_order_service(
            settings.order_service_url,
            settings.order_service_token,
            args.tenant,
            args.from_order_service,
        )
        total = len(args.from_order_service)
    failed = done = 0
    with opened(settings) as parts:
        store = parts.store
        with Progress(
            TextColumn("importing orders"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            console=console,
        ) as progress:
            task = progress.add_task("import", total=total, last="")
            for order_id, doc, error in source:
                if totals:
                    progress.update(task, total=totals[-1])
                error = error or _register(store, args.tenant, order_id, doc)
                if error:
                    failed += 1
                    progress.console.print(f"[red]{order_id or '?'}[/red]: {error}")
                done += 1
                progress.update(task, advance=1, last=order_id)
    console.print(f"imported {done - failed} of {done} orders")
    return 1 if failed else 0


def _register(store: Any, tenant: str, order_id: str, doc: dict[str, Any] | None) -> str | None:
    """Register one document; the reason it was refused, or None."""
    if not order_id:
        return "id: every Order document needs an id"
    try:
        clean = normalize(doc, order_id)
        order_commands.register(store, tenant, order_id, clean)
    except DomainError as exc:
        return str(exc)
    return None


def add_commands(sub: Any) -> None:
    """Add `orders import` to the `pickpack` parser's subcommands."""
    cmd = sub.add_parser("orders", help="manage registered orders")
    orders_sub = cmd.add_subparsers(dest="orders_command", required=True)
    imp = orders_sub.add_parser(
        "import", help="register orders from a JSON file or from the Order Service"
    )
    imp.add_argument("file", nargs="?", help="JSON array of pick-pack Order documents")
    imp.add_argument("--tenant", required=True, help="the tenant the orders belong to")
    imp.add_argument(
        "--from-order-service",
        nargs="*",
        metavar="ID",
        help="fetch these salesorders (or, with --site, the listed ones) from "
        "PICKPACK_ORDER_SERVICE_URL",
    )
    imp.add_argument("--site", help="with --from-order-service: list this site's open orders")
    imp.add_argument("--from-date", help="first delivery date (YYYY-MM-DD) to list")
    imp.add_argument("--to-date", help="last delivery date (inclusive; default: no end)")
    imp.set_defaults(func=_import)
