"""The running release's version: pyproject.toml's, from the installed distribution.

pyproject.toml is the one place it is written. /health reports it, and every database
connection carries it in its application_name (ledger/adapters/database.py), so that
`pickpack migrate` can tell which releases are connected. An editable install records
the version when it is installed: after a bump, `pip install -e .` again.
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
