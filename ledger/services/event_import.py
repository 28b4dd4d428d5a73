"""`pickpack events import`: an export (or an archive) recorded again, through the normal append.

Every line is read back into the fact it records (ledger.domain.replay) and recorded in
the file's order, each fact keeping the instant it was first recorded:

- a scan through EventStore.append_packing_events, the decision a scan posted here
  gets: the same eventId with the same content is "already there" (nothing recorded),
  with other content "conflicting", and a scan for a CANCELLED order is refused;
- any other fact through EventStore.run_order_command, under the same append lock: a
  fact the order already holds (the same kind, recorded at the same instant, showing
  the same fields) is "already there", a correction whose id is taken by another
  correction is "conflicting", and a fact for a CANCELLED order is refused.

So importing a file twice, or into the store it came from, records nothing new.

Lines are recorded in batches; after each batch the import's progress row is updated
(migrations/0050_event_imports.sql). A run that stops (killed, the database gone, a bad
line) is resumed by running the same command again: it skips what is at or before the
saved position. Once a file was read to its end, the next run reads it all again.

An imported fact is a new fact of the store it lands in: it gets a new position. Nothing
is sent anywhere: a finish brought back queues no calculations request (the outbox is
the service's, which an import does not run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import orjson

from ledger.adapters import archive_store, event_import_progress
from ledger.adapters.event_store import EventStore
from ledger.adapters.order_context import OrderContext
from ledger.domain.cutover import Tally
from ledger.domain.events import CorrectionRecorded, LedgerEvent, OrderCancelled
from ledger.domain.packing import Attribution, Verdict, format_event_time, parse_event_time
from ledger.domain.replay import (
    ImportedFact,
    ImportedScan,
    ImportItem,
    NotAnExportLine,
    parse_line,
    same_fact,
)
from ledger.domain.status import CANCELLED

DEFAULT_BATCH = 1000
MAX_PROBLEMS = 100  # kept for the summary; the counts cover the rest


class BadExport(ValueError):
    """A line of the file is not one `pickpack events export` writes."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class ImportReport:
    tally: Tally = field(default_factory=Tally)
    resumed_after: int = 0  # the source position a resumed run went on after (0: from the top)
    position: int = 0  # the last source position recorded


def source_key(first_line: bytes) -> str:
    """What names a file in the progress table: its first line's SHA-256."""
    return hashlib.sha256(first_line.strip()).hexdigest()


def import_lines(
    store: EventStore,
    tenant: str,
    lines: Iterable[bytes],
    batch: int = DEFAULT_BATCH,
    on_batch: Callable[[ImportReport, int], None] | None = None,
) -> ImportReport:
    """Record the export's lines for `tenant`; `on_batch(report, line)` after each batch."""
    numbered = _numbered(lines)
    first = next(numbered, None)
    report = ImportReport()
    if first is None:
        return report
    source = source_key(first[1])
    with store.connection() as conn:
        saved = event_import_progress.load(conn, tenant, source)
    if saved is not None and not saved.finished:
        report.resumed_after = saved.position
        report.tally = Tally.from_dict(saved.counts)
    items: list[ImportItem] = []
    last = 0
    line = 0
    for line, raw in _chain(first, numbered):
        item = _parse(tenant, line, raw)
        if item.position <= last:
            raise BadExport(
                line,
                f"position {item.position} does not follow {last}: the lines must stay in "
                "the order the export wrote them",
            )
        last = item.position
        if item.position <= report.resumed_after:
            continue
        items.append(item)
        if len(items) >= batch:
            _record_batch(store, tenant, source, items, report, line, False)
            items = []
            if on_batch is not None:
                on_batch(report, line)
    _record_batch(store, tenant, source, items, report, line, True)
    if on_batch is not None:
        on_batch(report, line)
    return report


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for n, raw in enumerate(lines, 1):
        if raw.strip():
            yield n, raw


def _chain(first: tuple[int, bytes], rest: Iterator[tuple[int, bytes]]) -> Iterator[Any]:
    yield first
    yield from rest


def _parse(tenant: str, line: int, raw: bytes) -> ImportItem:
    try:
        return parse_line(tenant, orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise BadExport(line, f"not JSON ({exc})") from None
    except NotAnExportLine as exc:
        raise BadExport(line, str(exc)) from None


def _record_batch(
    store: EventStore,
    tenant: str,
    source: str,
    items: list[ImportItem],
    report: ImportReport,
    line: int,
    finished: bool,
) -> None:
    tally = Tally(read=len(items))
    with store.connection() as conn:  # per batch: an archive may run during the import
        cutoff, _ = archive_store.retention(conn)
    last = items[-1].position if items else None
    if cutoff is not None:
        # This store archived its scans before the cut-off: one that old cannot be told
        # from an archived one here, so it is refused as a scanner's would be (a 409):
        # an archive loads into an empty or staging store, not back into its own.
        old = [
            i
            for i in items
            if isinstance(i, ImportedScan) and parse_event_time(i.event.event_time) < cutoff
        ]
        for scan in old[: MAX_PROBLEMS - len(report.tally.problems)]:
            tally.problems.append(
                f"{scan.event.event_id}: timestamp before this store's cut-off "
                f"{format_event_time(cutoff)} (its scans that old are archived)"
            )
        tally.refused += len(old)
        refused = {id(i) for i in old}
        items = [i for i in items if id(i) not in refused]
    # Runs in file order: consecutive scans in one append, consecutive facts of one
    # order in one command.
    for _, run in groupby(items, key=_run_key):
        group = list(run)
        if isinstance(group[0], ImportedScan):
            _record_scans(store, [g for g in group if isinstance(g, ImportedScan)], tally)
        else:
            _record_facts(store, tenant, [g for g in group if isinstance(g, ImportedFact)], tally)
    report.tally.add(tally)
    del report.tally.problems[MAX_PROBLEMS:]
    if last is not None:
        report.position = last
    with store.connection() as conn:
        event_import_progress.save(
            conn,
            tenant,
            source,
            max(report.position, report.resumed_after),
            line,
            report.tally.as_dict(),
            finished=finished,
        )


def _run_key(item: ImportItem) -> tuple[str, str]:
    return ("scan", "") if isinstance(item, ImportedScan) else ("fact", item.order_id)


def _record_scans(store: EventStore, scans: list[ImportedScan], tally: Tally) -> None:
    # The user the line names; no saas-token fingerprint: the export never carries one.
    outcomes = store.append_packing_events(
        [(s.event, Attribution(s.user, None)) for s in scans],
        recorded_at=[s.recorded_at for s in scans],
    )
    for outcome in outcomes:
        tally.count(outcome.verdict)
        if outcome.verdict is Verdict.CONFLICT:
            tally.problems.append(f"{outcome.event.event_id}: recorded here with other content")
        elif outcome.verdict is Verdict.ORDER_CLOSED:
            tally.problems.append(f"{outcome.event.event_id}: order is CANCELLED here")


def _record_facts(store: EventStore, tenant: str, facts: list[ImportedFact], tally: Tally) -> None:
    order_id = facts[0].order_id
    verdicts: list[Verdict] = []

    def decide(ctx: OrderContext) -> list[LedgerEvent]:
        verdicts.clear()
        unmatched = list(ctx.recorded)
        corrections: set[str] = set()
        closed = ctx.state.status == CANCELLED
        accepted: list[LedgerEvent] = []
        for item in facts:
            verdict = _judge(ctx, item, unmatched, corrections, closed)
            verdicts.append(verdict)
            if verdict is Verdict.RECORD:
                accepted.append(item.fact)
                closed = closed or isinstance(item.fact, OrderCancelled)
        return accepted

    store.run_order_command(tenant, order_id, decide)
    for item, verdict in zip(facts, verdicts, strict=True):
        tally.count(verdict)
        name = f"{type(item.fact).__name__} of order {order_id} at position {item.position}"
        if verdict is Verdict.CONFLICT:
            tally.problems.append(f"{name}: its correctionId is recorded here with other content")
        elif verdict is Verdict.ORDER_CLOSED:
            tally.problems.append(f"{name}: order is CANCELLED here")


def _judge(
    ctx: OrderContext,
    item: ImportedFact,
    unmatched: list[Any],
    corrections: set[str],
    closed: bool,
) -> Verdict:
    if isinstance(item.fact, CorrectionRecorded):
        # Corrections are unique by id (their own idempotency), wherever recorded.
        correction_id = item.fact.correction_id
        found = ctx.correction(correction_id)
        if found is not None:
            same = found[0] == item.order_id and same_fact(item, CorrectionRecorded, found[1])
            return Verdict.DUPLICATE if same else Verdict.CONFLICT
        if correction_id in corrections:
            return Verdict.CONFLICT
        corrections.add(correction_id)
    else:
        # Each fact the order holds answers for one line at most: two equal facts in
        # the file are both recorded the first time, both "already there" the next.
        for i, (cls, state) in enumerate(unmatched):
            if same_fact(item, cls, state):
                del unmatched[i]
                return Verdict.DUPLICATE
    return Verdict.ORDER_CLOSED if closed else Verdict.RECORD
