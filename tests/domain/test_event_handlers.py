"""Every recorded event class is handled, or explicitly ignored, by every fold.

Projections and the order state dispatch on event classes; a class added or renamed
without a handler would otherwise be skipped silently.
"""

from __future__ import annotations

import ast
import dataclasses
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
from eventsourcing.domain import DomainEvent

from ledger.domain.amounts import FIGURES
from ledger.domain.events import (
    EVENT_CLASSES,
    OrderFinished,
    PackingEventRecorded,
    event_class,
    restored,
)
from ledger.domain.packing import PackingEvent
from ledger.domain.scan_fields import AMOUNTS, SCAN_FIELDS
from ledger.domain.status import FOLDS
from projections.registry import PROJECTIONS
from tests.helpers.events import all_event_classes

ROOT = Path(__file__).resolve().parents[2]


def test_every_event_class_is_registered_by_its_stored_topic() -> None:
    assert set(EVENT_CLASSES.values()) == all_event_classes()
    for topic, cls in EVENT_CLASSES.items():
        assert event_class(topic) is cls
    assert event_class("ledger.events:NoSuchEvent") is None


def test_the_order_state_folds_every_event_class() -> None:
    assert set(FOLDS) == all_event_classes()


def test_each_projection_handles_or_ignores_every_event_class() -> None:
    for projection in PROJECTIONS.values():
        assert not projection.handles & projection.ignores, projection.name
        assert set(projection.handles | projection.ignores) == all_event_classes(), projection.name


def test_renaming_a_field_fails_the_type_check_of_its_folds_and_decisions(
    tmp_path: Path,
) -> None:
    """Decisions construct the event classes and folds read their attributes, so mypy
    checks both against the class: in a copy of the domain with one field renamed
    (AssigneeRemoved.assignee_id), the fold that reads it, the decision and the export
    reader that construct it each fail the type check, naming the field."""
    copy = tmp_path / "src" / "ledger"
    shutil.copytree(ROOT / "ledger" / "domain", copy / "domain", ignore=_CACHES)
    shutil.copy(ROOT / "ledger" / "__init__.py", copy / "__init__.py")
    events = copy / "domain" / "events.py"
    source = events.read_text()
    field = "class AssigneeRemoved(LedgerEvent):\n    assignee_id: str\n"
    assert field in source
    events.write_text(source.replace(field, field.replace("assignee_id", "assignee")))
    config, cache = str(ROOT / "pyproject.toml"), str(tmp_path / "cache")
    mypy = [sys.executable, "-m", "mypy", "--config-file", config, "--cache-dir", cache]
    result = subprocess.run(
        [*mypy, "-p", "ledger.domain"],
        cwd=copy.parent,
        capture_output=True,
        text=True,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert {line.split(":")[0] for line in errors} == {
        "ledger/domain/status.py",  # the order state's fold reads it
        "ledger/domain/orders.py",  # remove_assignee constructs it
        "ledger/domain/replay.py",  # an export line read back constructs it
    }, errors
    assert all('"assignee_id"' in line for line in errors), errors


# Where facts are folded from states restored without their envelope
# (ledger.domain.events.restored): the folds of the order state and of both projections,
# and the line sums an order command reads.
FOLD_MODULES = (
    "ledger/domain/status.py",
    "projections/line_totals.py",
    "projections/order_status.py",
    "ledger/adapters/order_context.py",
)


def test_no_fold_reads_the_envelope_that_restored_states_leave_undecoded() -> None:
    envelope = {f.name for f in dataclasses.fields(DomainEvent)}
    for module in FOLD_MODULES:
        tree = ast.parse((ROOT / module).read_text())
        read = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not read & envelope, (module, read & envelope)


def test_a_restored_fact_reads_as_the_fact_it_was_recorded_as() -> None:
    fact = OrderFinished(tenant="t", order_id="o1", recalculation_id="r", entries=[], user="u")
    state = orjson.loads(orjson.dumps(vars(fact.recorded(1, datetime.now(UTC))), default=str))
    back = restored(OrderFinished, state)
    assert type(back) is OrderFinished
    assert (back.tenant, back.order_id, back.recalculation_id, back.entries, back.user) == (
        "t",
        "o1",
        "r",
        [],
        "u",
    )
    assert restored(event_class("ledger.events:NoSuchEvent"), state) is None


_CACHES = shutil.ignore_patterns("__pycache__")


def test_the_scan_field_table_names_fields_the_recorded_scan_has() -> None:
    """The readers that take a stored scan's fields by name (GET /events, the history,
    the reconciliation) take the names from ledger/domain/scan_fields.py, which mypy cannot
    check: a field renamed in PackingEventRecorded (or PackingEvent) and not there fails
    here rather than at run time."""
    names = {stored for _, stored in SCAN_FIELDS}
    assert names <= {f.name for f in dataclasses.fields(PackingEventRecorded)}
    assert names <= {f.name for f in dataclasses.fields(PackingEvent)}
    assert tuple(stored for _, stored in AMOUNTS) == FIGURES  # and Amounts' own names
