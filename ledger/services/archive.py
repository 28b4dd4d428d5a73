"""`pickpack archive`: whole partitions to verified files, then out of the database.

For each partition wholly before the cut-off (a date: every fact recorded before it; or
a position), oldest first (docs/explanation/retention.md, section 4):

1. preconditions: every position of the partition is drawn and applied by every
   projection (the views hold its facts), and it is not the partition receiving appends;
2. files, one per tenant, in the export format (each line an item of the change feed,
   exactly what `pickpack events export` writes), zstd-compressed, written to a
   temporary name, fsynced and renamed: `<to>/<database>/<partition>/<tenant>.jsonl.zst`;
   a `manifest.json` (range, cut-off, per file its lines, first and last position, counts
   per type, SHA-256 of the compressed file, of its lines and of its positions) and a
   `SHA256SUMS` (`sha256sum -c` checks the files without the service);
3. verify: every file read back, its checksums compared, every line parsed by the
   import's own parser, and its lines and positions compared with the partition's rows;
4. the partition's facts folded into the views' baseline (`baseline`: what a rebuild
   starts from once they are gone; projections/baseline.py), resumable and never twice:
   the baseline's position commits with its rows;
5. record the archive (its cut-off applies from that commit), wait for every process to
   have seen it, then detach the partition concurrently and drop it.

A run interrupted anywhere resumes from its first unfinished step: files that verify are
not written again.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import zstandard
from psycopg import sql as q

from ledger.adapters import archive_store, connection, partitions
from ledger.adapters.compression import state_json
from ledger.adapters.connection import unbounded
from ledger.adapters.partitions import Partition
from ledger.domain.replay import NotAnExportLine, parse_line
from ledger.domain.story import change_item, recorded_instant
from ledger.version import service_version

FORMAT = "pickpack-archive/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
# Longer than any process caches the cut-off (archive_store.CUTOFF_CACHE_SECONDS).
SETTLE_SECONDS = 2 * archive_store.CUTOFF_CACHE_SECONDS + 1


# Folds every fact before the position given into the views' baseline; the facts folded
# (projections/baseline.fold: the entrypoints pass it in, so the ledger does not import
# the read side).
Baseline = Callable[[psycopg.Connection[Any], int, Callable[[str], None]], int]


class ArchiveError(RuntimeError):
    """The archive cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Archived:
    partition: str
    directory: Path
    facts: int
    cutoff: datetime
    # Orders with facts in the partition, neither packed nor cancelled: commands on them
    # answer 409 from the record on (docs/explanation/retention.md, section 5).
    open_orders: int = 0


def archive(
    url: str,
    to: Path,
    *,
    before: datetime | None = None,
    up_to: int | None = None,
    baseline: Baseline,
    settle: float = SETTLE_SECONDS,
    say: Callable[[str], None] = lambda _: None,
) -> list[Archived]:
    """Archive every whole partition before `before` (recording time) or up to position
    `up_to`, folding each into the views' baseline before it is recorded; returns what
    was archived (nothing: no partition qualified)."""
    if (before is None) == (up_to is None):
        raise ArchiveError("give a date (--before) or a position (--position), one of them")
    done: list[Archived] = []
    # Bounded connects (a frozen first host costs one timeout); no deadline on the round
    # trips: a partition's reads and counts take as long as its size.
    with connection.connect(url, autocommit=True) as conn, unbounded(conn):
        database = conn.info.dbname
        _finish_drops(url, conn, say)
        for part in partitions.partitions(conn):
            if not _qualifies(conn, part, before, up_to):
                break  # archives stay contiguous: the first that does not qualify ends it
            directory = to / database / part.name()
            earlier = archive_store.recorded(conn, part)
            if earlier is None:
                cutoff, facts = _record(conn, part, before, directory, baseline, say)
                say(f"{part.name()}: verified; cut-off {cutoff.isoformat()}; detaching")
            else:
                # Recorded by a run that stopped before the drop: its files verified then,
                # and the record took the partition's order facts out of order_facts, so
                # comparing the files with the database again would fail. Its baseline
                # fold came before the record.
                cutoff, facts = earlier
                say(f"{part.name()}: recorded earlier; cut-off {cutoff.isoformat()}; detaching")
            still_open = archive_store.open_orders(conn, part)
            if still_open:
                say(
                    f"{part.name()}: {still_open} orders with facts in it are neither packed "
                    "nor cancelled; commands on them (register, status, assignees, packaging, "
                    "finish, corrections) now answer 409: their history is archived"
                )
            time.sleep(settle)  # every process has read the cut-off before the facts go
            partitions.detach_and_drop(url, part)
            archive_store.mark_dropped(conn, part)
            done.append(Archived(part.name(), directory, facts, cutoff, still_open))
    return done


def _finish_drops(url: str, conn: psycopg.Connection[Any], say: Callable[[str], None]) -> None:
    """Finish the drops an earlier run left once its partition was no longer attached
    (stopped after the detach, or after the drop but before marking it): the loop over
    attached partitions below never sees those, so `dropped_at` stayed unset and a
    detached table could stay behind. Still attached ones are the loop's (it waits the
    settle time first)."""
    attached = {p.name() for p in partitions.partitions(conn)}
    for part in archive_store.not_marked_dropped(conn):
        if part.name() not in attached:
            say(f"{part.name()}: finishing the drop an earlier run left")
            partitions.detach_and_drop(url, part)
            archive_store.mark_dropped(conn, part)


def _record(
    conn: psycopg.Connection[Any],
    part: Partition,
    before: datetime | None,
    directory: Path,
    baseline: Baseline,
    say: Callable[[str], None],
) -> tuple[datetime, int]:
    """Steps 2 to 5's record: the files written (unless they already verify), verified,
    the partition folded into the baseline, and the archive recorded; its cut-off and
    fact count."""
    manifest = _verified(conn, part, directory)
    if manifest is None:
        say(f"{part.name()}: writing the files")
        _write(conn, part, directory, _cutoff(conn, part, before))
        manifest = _verified(conn, part, directory)
        if manifest is None:  # pragma: no cover - _verified raises with the reason
            raise ArchiveError(f"{directory}: the files just written do not verify")
    # Before the record: from its commit on the partition may be dropped, and a run
    # stopped in between resumes with the detach. A run stopped mid-fold folds on from
    # the last flush; one stopped after the fold folds nothing again.
    folded = baseline(conn, part.upper, say)
    say(f"{part.name()}: {folded} facts folded into the views' baseline")
    cutoff = datetime.fromisoformat(manifest["cutoff"])
    digest = _sha256_file(directory / MANIFEST)
    archive_store.record(conn, part, cutoff, manifest["facts"], digest, str(directory))
    return cutoff, int(manifest["facts"])


def _qualifies(
    conn: psycopg.Connection[Any], part: Partition, before: datetime | None, up_to: int | None
) -> bool:
    last = part.upper - 1
    if last > partitions.drawn(conn) or last > archive_store.projected_up_to(conn):
        return False  # still receiving appends, or not yet in every view
    if up_to is not None:
        return last <= up_to
    newest = _last_recorded(conn, part)
    return newest is None or (before is not None and newest < before)


def _last_recorded(conn: psycopg.Connection[Any], part: Partition) -> datetime | None:
    row = conn.execute(
        q.SQL("SELECT state FROM {} ORDER BY notification_id DESC LIMIT 1").format(
            q.Identifier(part.name())
        )
    ).fetchone()
    return None if row is None else recorded_instant(orjson.loads(state_json(row[0])))


def _cutoff(conn: psycopg.Connection[Any], part: Partition, before: datetime | None) -> datetime:
    """The later of the requested date, the previous cut-off and the newest scanner
    timestamp archived plus 1 ms: every archived scan is timestamped before it."""
    candidates = [c for c in (before, archive_store.retention(conn)[0]) if c is not None]
    newest = archive_store.newest_scan_time(conn, part)
    if newest is not None:
        candidates.append(newest + timedelta(milliseconds=1))
    cutoff = max(candidates, default=_last_recorded(conn, part) or datetime.now(UTC))
    if cutoff > datetime.now(UTC):
        raise ArchiveError(
            f"{part.name()} holds a scan timestamped {newest}, in the future: archiving it "
            "would refuse every scan before that instant. Correct or leave that partition"
        )
    return cutoff


def _write(
    conn: psycopg.Connection[Any], part: Partition, directory: Path, cutoff: datetime
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    first_at = last_at = None
    for tenant in archive_store.tenants(conn, part):
        name = quote(tenant, safe="") + ".jsonl.zst"
        info = _write_file(directory / name, archive_store.facts(conn, tenant, part))
        files.append({"tenant": tenant, "file": name, **info})
        first_at = min(filter(None, (first_at, info.pop("firstRecordedAt"))), default=None)
        last_at = max(filter(None, (last_at, info.pop("lastRecordedAt"))), default=None)
    for f in files:
        f.pop("firstRecordedAt", None)
        f.pop("lastRecordedAt", None)
    row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
    manifest = {
        "format": FORMAT,
        "serviceVersion": service_version(),
        "store": {"database": conn.info.dbname, "systemIdentifier": str(row[0]) if row else None},
        "partition": {"name": part.name(), "from": part.lower, "upTo": part.upper},
        "cutoff": cutoff.isoformat(),
        "firstRecordedAt": first_at,
        "lastRecordedAt": last_at,
        "facts": sum(int(f["lines"]) for f in files),
        "files": files,
    }
    _durable(directory / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    sums = [f"{f['sha256']}  {f['file']}" for f in files]
    sums.append(f"{_sha256_file(directory / MANIFEST)}  {MANIFEST}")
    _durable(directory / SUMS, ("\n".join(sums) + "\n").encode())


def _write_file(path: Path, facts: Iterable[Any]) -> dict[str, Any]:
    lines_sha, positions_sha, types = hashlib.sha256(), hashlib.sha256(), Counter[str]()
    count, first, last, first_at, last_at = 0, None, None, None, None
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as raw:
        with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as out:
            for position, cls, state in facts:
                item = change_item(position, cls, state)
                line = orjson.dumps(item) + b"\n"
                out.write(line)
                lines_sha.update(line)
                positions_sha.update(b"%d\n" % position)
                types[item["type"]] += 1
                count += 1
                first = position if first is None else first
                last = position
                first_at = first_at or item["recordedAt"]
                last_at = item["recordedAt"]
        raw.flush()
        os.fsync(raw.fileno())
    tmp.rename(path)
    return {
        "lines": count,
        "firstPosition": first,
        "lastPosition": last,
        "types": dict(sorted(types.items())),
        "sha256": _sha256_file(path),
        "linesSha256": lines_sha.hexdigest(),
        "positionsSha256": positions_sha.hexdigest(),
        "firstRecordedAt": first_at,
        "lastRecordedAt": last_at,
    }


def _durable(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.rename(path)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path) -> dict[str, Any]:
    """Check an archive's files against its manifest and SHA256SUMS, reading every line
    with the import's parser; the manifest, or ArchiveError naming what is wrong."""
    try:
        manifest = orjson.loads((directory / MANIFEST).read_bytes())
        sums: dict[str, str] = {}
        for line in (directory / SUMS).read_text().splitlines():
            digest, _, name = line.partition("  ")
            sums[name] = digest
    except (OSError, orjson.JSONDecodeError, ValueError) as exc:
        raise ArchiveError(f"{directory}: no readable manifest and {SUMS} ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise ArchiveError(f"{directory / MANIFEST}: not a {FORMAT} manifest")
    if sums.get(MANIFEST) != _sha256_file(directory / MANIFEST):
        raise ArchiveError(f"{directory / MANIFEST}: its checksum is not the one in {SUMS}")
    lower, upper = manifest["partition"]["from"], manifest["partition"]["upTo"]
    for f in manifest["files"]:
        path = directory / f["file"]
        if not path.exists():
            raise ArchiveError(f"{path}: missing")
        if _sha256_file(path) != f["sha256"] or sums.get(f["file"]) != f["sha256"]:
            raise ArchiveError(f"{path}: its checksum is not the manifest's")
        _verify_lines(path, f, lower, upper)
    return dict(manifest)


def _verify_lines(path: Path, f: dict[str, Any], lower: int | None, upper: int) -> None:
    lines_sha, positions_sha, types = hashlib.sha256(), hashlib.sha256(), Counter[str]()
    count, previous = 0, None
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as unzipped:
        buffered = _lines(unzipped)
        for line in buffered:
            count += 1
            try:
                item = parse_line(f["tenant"], orjson.loads(line))
            except (NotAnExportLine, orjson.JSONDecodeError) as exc:
                raise ArchiveError(f"{path}, line {count}: {exc}") from None
            p = item.position
            if (lower is not None and p < lower) or p >= upper or (previous and p <= previous):
                raise ArchiveError(f"{path}, line {count}: position {p} out of order or range")
            previous = p
            lines_sha.update(line)
            positions_sha.update(b"%d\n" % p)
            types[orjson.loads(line)["type"]] += 1
    if (count, lines_sha.hexdigest(), positions_sha.hexdigest(), dict(types)) != (
        f["lines"],
        f["linesSha256"],
        f["positionsSha256"],
        f["types"],
    ):
        raise ArchiveError(f"{path}: its lines are not those the manifest describes")


def _lines(stream: Any) -> Iterable[bytes]:
    rest = b""
    for block in iter(lambda: stream.read(1 << 20), b""):
        rest += block
        *complete, rest = rest.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if rest:
        yield rest


def _verified(
    conn: psycopg.Connection[Any], part: Partition, directory: Path
) -> dict[str, Any] | None:
    """The manifest when the files in `directory` verify and hold exactly the partition's
    facts; None when there are none yet (or they are from another run: rewritten)."""
    if not (directory / MANIFEST).exists():
        return None
    try:
        manifest = verify(directory)
    except ArchiveError:
        return None
    stored, per_tenant = archive_store.counts(conn, part)
    in_files = {f["tenant"]: f["lines"] for f in manifest["files"]}
    if manifest["partition"]["upTo"] != part.upper or manifest["facts"] != stored:
        return None
    if in_files != per_tenant:
        raise ArchiveError(
            f"{part.name()}: the files hold {in_files} facts per tenant, the database "
            f"{per_tenant}; the archive stops before dropping anything"
        )
    for f in manifest["files"]:
        digest = hashlib.sha256()
        for position, _, _ in archive_store.facts(conn, f["tenant"], part):
            digest.update(b"%d\n" % position)
        if digest.hexdigest() != f["positionsSha256"]:
            raise ArchiveError(f"{part.name()}: {f['file']} does not hold the tenant's positions")
    return manifest
