"""The service's version, as /health, /openapi.json and the docs pages report it
(ledger/version.py reads it from the installed distribution)."""

from __future__ import annotations

from ledger.version import DISTRIBUTION, service_version

__all__ = ["DISTRIBUTION", "service_version"]
