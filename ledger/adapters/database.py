"""Where the PostgreSQL comes from: the configured URL, or an embedded server.

The embedded server is the `pgserver` wheel (PostgreSQL 16 binaries inside a Python
package), so a new machine needs neither Docker nor a system PostgreSQL. Its data
lives in ``PICKPACK_DATA_DIR/pg`` and survives restarts; it listens on a Unix socket
only. pgserver stops the server when the last process that asked for it exits.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.config import Settings
from ledger.version import service_version

log = logging.getLogger(__name__)


def for_role(url: str, role: str) -> str:
    """`url` with application_name `pickpack-<role>/<version>`, unless the URL names one.

    Each kind of connection says what it is (api, writer, projections, listen, outbox,
    metrics), so pg_stat_activity, the server log and bench/cpu.py tell them apart, and
    which release it belongs to, so `pickpack migrate` can see whether processes of
    another release are still connected (ledger/adapters/migrate.py).
    """
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if "application_name" in conninfo_to_dict(url):
        return url
    return make_conninfo(url, application_name=application_name(role))


def application_name(role: str) -> str:
    return f"{APP_PREFIX}{role}/{service_version()}"


APP_PREFIX = "pickpack-"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL did not start (pgserver has logged why: initdb's or the
    server's own transcript)."""


@dataclass
class Database:
    """A reachable PostgreSQL: its URL, and the embedded server handle if we own one."""

    url: str
    embedded: Any = None  # pgserver.PostgresServer when embedded

    def stop(self) -> None:
        """Stop the embedded server (no-op for a configured URL)."""
        if self.embedded is not None:
            self.embedded.cleanup()
            self.embedded = None


def start_embedded(pgdata: Path) -> Database:
    """Start (or attach to) the embedded PostgreSQL kept in ``pgdata``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        try:
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            # pgserver raises whatever its commands raised (CalledProcessError, timeouts);
            # callers need only know that it was the embedded server, and where.
            raise EmbeddedDatabaseError(
                f"the embedded PostgreSQL in {pgdata} did not start"
            ) from exc
    return Database(url=server.get_uri(), embedded=server)


def provision(settings: Settings) -> Database:
    """PICKPACK_DATABASE_URL if set; otherwise the embedded server in PICKPACK_DATA_DIR."""
    if settings.database_url:
        return Database(url=settings.database_url)
    log.info("no PICKPACK_DATABASE_URL: using the embedded PostgreSQL in %s", settings.data_dir)
    return start_embedded(settings.data_dir / "pg")
