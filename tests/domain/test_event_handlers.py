"""Every recorded event class is handled, or explicitly ignored, by every fold.

Projections and the order state dispatch on event classes; a class added or renamed
without a handler would otherwise be skipped silently.
"""

from __future__ import annotations

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
