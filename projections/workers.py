"""Start the projection runners that `pickpack serve` keeps running."""

from __future__ import annotations

from typing import Any

from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner


def start_projection_workers(runtime: Any) -> list[ProjectionRunner]:
    """One runner keeps every projection: one read of each new event serves them all,
    while each projection keeps its own lock and position (a rebuild swaps one alone)."""
    return [ProjectionRunner(runtime.database.url, list(PROJECTIONS.values())).start()]
