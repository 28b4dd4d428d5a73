"""`pickpack emporix import-events | reconcile`: moving a tenant's history from Emporix.

- `import-events` pulls GET /pick-pack/{tenant}/events from an Emporix-compatible service
  (token from its /oauth/token) and appends every event here with its own eventId,
  timestamp, user and site (ledger/services/emporix_import.py). Safe to re-run; an
  interrupted run resumes. Exit code 0, or 1 when any event was conflicting or refused.
- `reconcile` compares, per order, product and unit, the totals of the two services'
  events and lists the differences. Exit code 0 when they agree, 1 when any differs.
Both exit 8 (one sentence) when the Emporix service cannot be read after the retries or
answers what is refused (a page larger or longer than asked, a page repeated, not
JSON), and 9 when `--deadline` passes; what was recorded stays recorded and the next run
resumes (docs/reference/cli.md). Remote text is printed as it is, never as markup.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cli.errors import CommandError, Exit
from ledger.domain.cutover import Tally

DEFAULT_DEADLINE_SECONDS = 3600.0
_RESUME = "what was recorded stays recorded: run again to resume"


@contextmanager
def _store() -> Iterator[Any]:
    from bootstrap.opened import opened

    with opened() as parts:
        yield parts.store


def _source(args: argparse.Namespace) -> Any:
    from ledger.adapters.emporix import EmporixSource

    secret = args.client_secret or os.environ.get("EMPORIX_CLIENT_SECRET")
    if not secret:
        raise CommandError("--client-secret or EMPORIX_CLIENT_SECRET is required", Exit.USAGE)
    if args.deadline <= 0:
        raise CommandError("--deadline: give a number of seconds above 0", Exit.USAGE)
    if not 1 <= args.page_size <= 20000:
        raise CommandError("--page-size: give 1 to 20000 events", Exit.USAGE)
    return EmporixSource(
        args.url,
        args.tenant,
        args.client_id,
        secret,
        retries=args.retries,
        deadline=time.monotonic() + args.deadline,
    )


def _failed(exc: Exception, what: str) -> CommandError:
    """The one sentence for a source that failed, and its exit code."""
    from ledger.adapters.emporix import SourceDeadline

    if isinstance(exc, SourceDeadline):
        return CommandError(f"{what} stopped at its deadline ({exc}); {_RESUME}", Exit.DEADLINE)
    return CommandError(f"{what} stopped: {exc}; {_RESUME}", Exit.SOURCE)


def _summary(tally: Tally) -> str:
    return (
        f"read {tally.read}, recorded {tally.recorded}, already there {tally.already_there}, "
        f"conflicting {tally.conflicting}, refused {tally.refused}"
    )


def _import_events(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

    from ledger.adapters.emporix import SourceError, remote_text
    from ledger.services.emporix_import import import_events

    console = Console(stderr=True)
    source = _source(args)
    try:
        with (
            _store() as store,
            Progress(
                SpinnerColumn(),
                TextColumn("importing Emporix events"),
                BarColumn(),
                TextColumn("page {task.fields[page]}: {task.fields[line]}"),
                console=console,
                transient=not console.is_terminal,
            ) as progress,
        ):
            task = progress.add_task("import", total=None, page="-", line="")

            def on_page(tally: Tally, page: int) -> None:
                progress.update(task, page=page, line=_summary(tally))

            tally, first = import_events(
                store, source, args.tenant, args.since, args.page_size, on_page, source.deadline
            )
    except SourceError as exc:
        raise _failed(exc, "the import") from None
    finally:
        source.close()
    for problem in tally.problems:
        # The peer's text, as text: never read as markup (a `[/bold]` in it is data).
        console.print(f"  {remote_text(problem.encode(), 1000)}", markup=False, highlight=False)
    if first > 1:
        console.print(f"resumed at page {first}", markup=False)
    print(_summary(tally))
    return 1 if tally.conflicting or tally.refused else 0


def _reconcile(args: argparse.Namespace) -> int:
    from ledger.adapters.emporix import SourceError
    from ledger.domain.packing import parse_event_time
    from ledger.services.emporix_import import reconcile

    until = parse_event_time(args.until) if args.until else None
    source = _source(args)
    try:
        with _store() as store:
            diffs, compared = reconcile(store, source, args.tenant, until, args.page_size)
    except SourceError as exc:
        raise _failed(exc, "the comparison") from None
    finally:
        source.close()
    if diffs:
        print("orderNumber\tproductId\tunit\temporix picked/packed/canceled\there")
    for d in diffs:
        theirs = "/".join(map(str, d.emporix.as_list()))
        ours = "/".join(map(str, d.here.as_list()))
        print(f"{d.order_id}\t{d.product_id}\t{d.unit}\t{theirs}\t{ours}")
    orders = len({d.order_id for d in diffs})
    print(
        f"compared {compared} lines: {len(diffs)} differ, in {orders} orders",
        file=sys.stderr,
    )
    return 1 if diffs else 0


def _common(cmd: Any) -> None:
    cmd.add_argument("--tenant", required=True)
    cmd.add_argument(
        "--url", required=True, help="the Emporix API base, e.g. https://api.emporix.io"
    )
    cmd.add_argument("--client-id", required=True)
    cmd.add_argument(
        "--client-secret", help="the client's secret (default: $EMPORIX_CLIENT_SECRET)"
    )
    cmd.add_argument("--page-size", type=int, default=1000, help="events per page (max 20000)")
    cmd.add_argument("--retries", type=int, default=3, help="retries of a failing call")
    cmd.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_SECONDS,
        help="stop after this many seconds, whatever the service sends (exit 9; run "
        "again to resume; default 3600)",
    )


def add_commands(sub: Any) -> None:
    """`pickpack emporix import-events|reconcile`."""
    cmd = sub.add_parser("emporix", help="move a tenant's event history from Emporix")
    emporix_sub = cmd.add_subparsers(dest="emporix_command", required=True)
    imp = emporix_sub.add_parser(
        "import-events", help="append Emporix's events here (resumable, safe to re-run)"
    )
    _common(imp)
    imp.add_argument(
        "--since", help="only events after this timestamp (ISO 8601, e.g. 2026-11-01T00:00:00Z)"
    )
    imp.set_defaults(func=_import_events)
    rec = emporix_sub.add_parser(
        "reconcile", help="compare both services' totals per order; exit 1 on any difference"
    )
    _common(rec)
    rec.add_argument(
        "--until", help="only events at or before this timestamp, on both sides (the switch)"
    )
    rec.set_defaults(func=_reconcile)
