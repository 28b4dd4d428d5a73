"""Every recorded event class is handled, or explicitly ignored, by every fold.

Projections and the order state dispatch on event classes; a class added or renamed
without a handler would otherwise be skipped silently.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from eventsourcing.domain import DomainEvent

from ledger.domain import event_data
from ledger.domain.events import EVENT_CLASSES, event_class
from ledger.domain.status import FOLDS
from projections.registry import PROJECTIONS
from tests.helpers.events import all_event_classes


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


def test_each_event_class_has_a_typed_state_with_exactly_its_fields() -> None:
    """The folds read a fact's state through its TypedDict (ledger/domain/event_data.py):
    a field renamed in the class and not there (or the other way) fails here."""
    base = {f.name for f in dataclasses.fields(DomainEvent)}
    for cls in all_event_classes():
        typed = getattr(event_data, f"{cls.__name__}Data")
        declared = typed.__required_keys__ | typed.__optional_keys__
        assert declared == {f.name for f in dataclasses.fields(cls)} - base, cls.__name__
        assert get_type_hints(typed) == {
            f.name: hint for f, hint in _hints(cls).items() if f.name not in base
        }, cls.__name__


def _hints(cls: type) -> dict[dataclasses.Field[Any], Any]:
    hints = get_type_hints(cls)
    return {f: hints[f.name] for f in dataclasses.fields(cls)}
