"""`pickpack events export --tenant T [--after P] [--follow]`: the change feed as JSON lines;
`pickpack events import FILE --tenant T`: such a file (or an archive of one) recorded again.

Reads the database directly through the feed's own query (ledger.services.changes.read),
so each line is exactly an item of `GET /changes`, in position order: a pipeline that
remembers the last position it stored resumes with `--after` and misses nothing.
`--follow` keeps waiting for new facts: it listens for the store's NOTIFY (sent with
every append) and also looks every second, so a missed notification only delays a line.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from cli.errors import CommandError, Exit

if TYPE_CHECKING:
    from ledger.services.event_import import ImportReport

PAGE = 1000
FOLLOW_POLL_SECONDS = 1.0


def _export(args: argparse.Namespace) -> int:
    import psycopg

    from bootstrap.opened import opened
    from ledger.adapters.prepared import NOTIFY_CHANNEL
    from ledger.services.changes import read

    out = sys.stdout.buffer
    after = args.after
    listen: psycopg.Connection[Any] | None = None
    with opened() as parts:
        try:
            if args.follow:
                listen = psycopg.connect(parts.database.url, autocommit=True)
                listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
            while True:
                # Before every page: an archive may take the next partition meanwhile.
                _unless_archived(parts.store.connection, after)
                page = read(parts.store.connection, args.tenant, after, PAGE, parts.catch_up)
                for item in page["items"]:
                    out.write(orjson.dumps(item) + b"\n")
                out.flush()
                after = page["next"]
                if page["items"]:
                    continue
                if listen is None:
                    return 0
                for _ in listen.notifies(timeout=FOLLOW_POLL_SECONDS, stop_after=1):
                    pass
        except (KeyboardInterrupt, BrokenPipeError):
            return 0  # the reader went away (`| head`) or the user stopped following
        finally:
            if listen is not None:
                listen.close()


def _unless_archived(connect: Any, after: int) -> None:
    """Facts after `after` archived: say so rather than export with a gap (the change
    feed answers 410 the same way); `connect`: the store's pooled connections."""
    from ledger.adapters.archive_store import retention
    from ledger.domain.packing import format_event_time
    from ledger.domain.retention import archived_after

    with connect() as conn:
        retained = retention(conn)
    first = retained[1]
    if (cutoff := archived_after(retained, after)) is not None:
        raise CommandError(
            f"facts up to position {first - 1} are archived (cut-off "
            f"{format_event_time(cutoff)}): export with --after {first - 1} to accept the "
            "gap; the archive's files hold the facts before it (docs/how-to/retention.md)",
            Exit.FILE,
        )


GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@contextmanager
def _lines(path: Path) -> Iterator[IO[bytes]]:
    """The file's lines, whether plain, gzip- or zstd-compressed (told by their first bytes)."""
    with path.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(GZIP_MAGIC):
            import gzip

            with gzip.open(raw, "rb") as unzipped:
                yield io.BufferedReader(unzipped)  # type: ignore[arg-type]
        elif magic == ZSTD_MAGIC:
            import zstandard

            # Across frames: `cat a.zst b.zst` is a valid zstd file too.
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader as unzstd:
                yield io.BufferedReader(unzstd)  # type: ignore[arg-type]
        else:
            yield raw


def _import(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bootstrap.opened import opened
    from ledger.services.event_import import BadExport, import_lines

    if args.batch < 1:
        raise CommandError("--batch must be at least 1")
    console = Console(stderr=True)
    path = Path(args.file)
    with opened() as parts:
        store = parts.store

        def on_batch(report: ImportReport, line: int) -> None:
            if console.is_terminal:
                console.print(f"line {line:,}: {_summary(report)}", end="\r")

        with _lines(path) as lines:
            try:
                report = import_lines(store, args.tenant, lines, args.batch, on_batch)
            except (EOFError, OSError) as exc:
                if isinstance(exc, OSError) and exc.filename:
                    raise
                raise CommandError(
                    f"{path} is not a readable export ({exc}): give a file written by "
                    "`pickpack events export` or `pickpack archive`, plain, gzip or zstd",
                    Exit.FILE,
                ) from None
            except BadExport as exc:
                raise CommandError(
                    f"{path} is not an export: {exc}; give a file written by `pickpack events "
                    "export` or `pickpack archive` (what came before that line was recorded: "
                    "run again once the file is fixed and the import resumes)",
                    Exit.FILE,
                ) from None
    for problem in report.tally.problems:
        console.print(f"  {problem}")
    if report.resumed_after:
        console.print(f"resumed after position {report.resumed_after:,}")
    print(_summary(report))
    return 1 if report.tally.conflicting or report.tally.refused else 0


def _summary(report: ImportReport) -> str:
    t = report.tally
    return (
        f"read {t.read}, recorded {t.recorded}, already there {t.already_there}, "
        f"conflicting {t.conflicting}, refused {t.refused}"
    )


def add_commands(sub: Any) -> None:
    """Add `events export` and `events import` to the `pickpack` parser's subcommands."""
    cmd = sub.add_parser("events", help="read the ledger's facts")
    events_sub = cmd.add_subparsers(dest="events_command", required=True)
    exp = events_sub.add_parser(
        "export", help="every fact of a tenant in commit order, as JSON lines (the change feed)"
    )
    exp.add_argument("--tenant", required=True, help="the tenant whose facts to export")
    exp.add_argument(
        "--after", type=int, default=0, help="only facts after this position (default 0)"
    )
    exp.add_argument("--follow", action="store_true", help="keep waiting for new facts")
    exp.set_defaults(func=_export)
    imp = events_sub.add_parser(
        "import",
        help="record an export's (or an archive's) facts here, through the normal append "
        "(safe to re-run; an interrupted run resumes)",
    )
    imp.add_argument("file", help="JSON lines from `pickpack events export` (or .gz, .zst)")
    imp.add_argument("--tenant", required=True, help="the tenant to record the facts for")
    imp.add_argument("--batch", type=int, default=1000, help="lines recorded per batch")
    imp.set_defaults(func=_import)
