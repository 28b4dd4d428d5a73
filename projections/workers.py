"""Start the projection runners that `pickpack serve` keeps running."""

from __future__ import annotations

from typing import Any

from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner


def start_projection_workers(runtime: Any) -> list[ProjectionRunner]:
    return [
        ProjectionRunner(runtime.database.url, projection).start()
        for projection in PROJECTIONS.values()
    ]
