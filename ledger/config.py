"""Service configuration, read once from the fixed PICKPACK_* environment names."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """What the operator configured; every field has the default DESIGN.md gives."""

    database_url: str | None
    data_dir: Path
    jwt_secret: str | None
    jwks_url: str | None
    order_service_url: str | None
    order_service_token: str | None
    # Recalculation delivery (docs/recalculation.md); tests shorten the backoff.
    order_service_timeout_seconds: float = 30.0
    recalc_backoff_seconds: float = 1.0
    recalc_max_backoff_seconds: float = 300.0
    recalc_max_attempts: int = 10
    recalc_poll_seconds: float = 0.5

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            database_url=e.get("PICKPACK_DATABASE_URL") or None,
            data_dir=Path(e.get("PICKPACK_DATA_DIR") or "./.pickpack").resolve(),
            jwt_secret=e.get("PICKPACK_JWT_SECRET") or None,
            jwks_url=e.get("PICKPACK_JWKS_URL") or None,
            order_service_url=(e.get("PICKPACK_ORDER_SERVICE_URL") or "").rstrip("/") or None,
            order_service_token=e.get("PICKPACK_ORDER_SERVICE_TOKEN") or None,
            order_service_timeout_seconds=float(
                e.get("PICKPACK_ORDER_SERVICE_TIMEOUT_SECONDS") or 30.0
            ),
            recalc_backoff_seconds=float(e.get("PICKPACK_RECALC_BACKOFF_SECONDS") or 1.0),
            recalc_max_backoff_seconds=float(e.get("PICKPACK_RECALC_MAX_BACKOFF_SECONDS") or 300.0),
            recalc_max_attempts=int(e.get("PICKPACK_RECALC_MAX_ATTEMPTS") or 10),
            recalc_poll_seconds=float(e.get("PICKPACK_RECALC_POLL_SECONDS") or 0.5),
        )
