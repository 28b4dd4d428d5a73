"""Start the projection runners that `pickpack serve` keeps running."""

from __future__ import annotations

from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner


def start_projection_workers(database_url: str) -> list[ProjectionRunner]:
    """One runner keeps every projection: one read of each new event serves them all,
    while each projection keeps its own lock and position (a rebuild swaps one alone)."""
    return [ProjectionRunner(database_url, list(PROJECTIONS.values())).start()]
