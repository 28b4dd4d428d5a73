"""`pickpack archive --before DATE | --position P --to DIR`: old partitions to verified
files, then out of the store; `pickpack archive verify DIR`: check an archive's files
again, anywhere, without the database (ledger/services/archive.py; the procedure is
docs/how-to/retention.md).
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cli.errors import CommandError, Exit


def _when(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 instant with a zone."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date or an ISO 8601 instant ({exc})") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("an instant needs a zone: `Z` or an offset")
    return moment


def _archive(args: argparse.Namespace) -> int:
    from ledger.services.archive import ArchiveError, verify

    if args.verify:
        if args.verify[0] != "verify" or len(args.verify) != 2:
            raise CommandError("usage: `pickpack archive verify DIR` (DIR holds manifest.json)")
        try:
            manifest = verify(Path(args.verify[1]))
        except ArchiveError as exc:
            raise CommandError(f"{exc}.", Exit.FILE) from None
        part = manifest["partition"]
        print(
            f"{args.verify[1]}: {manifest['facts']} facts of {len(manifest['files'])} "
            f"tenant(s), positions {part['from'] or 'MINVALUE'} to {part['upTo'] - 1}, "
            f"cut-off {manifest['cutoff']}: every file and line checks"
        )
        return 0
    if (args.before is None) == (args.position is None) or args.to is None:
        raise CommandError("give --to DIR and one of --before DATE or --position P")
    from bootstrap.opened import opened
    from ledger.services.archive import archive
    from projections.baseline import BaselineConflict, fold

    with opened() as parts:
        try:
            done = archive(
                parts.database.url,
                Path(args.to),
                before=args.before,
                up_to=args.position,
                baseline=fold,
                say=print,
            )
        except (ArchiveError, BaselineConflict) as exc:
            raise CommandError(f"{exc}.", Exit.ITEMS_REFUSED) from None
        except OSError as exc:
            raise CommandError(f"{args.to}: {exc.strerror or exc}.", Exit.FILE) from None
    if not done:
        print("nothing to archive: no whole partition lies before the cut-off")
    for a in done:
        still_open = f"; {a.open_orders} orders still open" if a.open_orders else ""
        print(f"archived {a.partition}: {a.facts} facts in {a.directory}, dropped{still_open}")
    return 0


def add_commands(sub: Any) -> None:
    arch = sub.add_parser(
        "archive",
        help="old partitions to verified files, then dropped; `archive verify DIR` checks files",
    )
    arch.add_argument("verify", nargs="*", help="`verify DIR`: check an archive's files")
    arch.add_argument("--before", type=_when, help="archive partitions recorded before this")
    arch.add_argument("--position", type=int, help="archive partitions up to this position")
    arch.add_argument("--to", help="the directory the files go to")
    arch.set_defaults(func=_archive)
