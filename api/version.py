"""The service's version: pyproject.toml's, read from the installed distribution's metadata.

pyproject.toml is the one place it is written; /health, /openapi.json and the docs pages
report what the installed package says. An editable install records the version when it
is installed, so after a bump `pip install -e .` again (tests/test_version.py notices).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "pickpack-ledger"


@cache  # a metadata lookup walks sys.path; /health is polled
def service_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        # Source on sys.path but never installed: say so rather than invent a number.
        return "0+unknown"
