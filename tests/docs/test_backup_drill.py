"""The backup-and-restore drill of docs/how-to/backup-restore.md, run small: a live store
filled over HTTP, pg_dump -Fc while it serves, pg_restore into a new database, the status
check and a rebuild before any service runs on the copy, then every table, order,
packlist and the change feed compared with the original."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import backup_drill
from devtools.harness.pg import ServerSource


def test_a_restored_backup_serves_what_the_original_served(
    pg_server: ServerSource, tmp_path: Path
) -> None:
    args = argparse.Namespace(orders=8, scans=60, seed=0, pg_bin=None, keep=False)
    report = backup_drill.drill(pg_server.url, args, tmp_path)
    assert report.differences == []
    assert report.events >= 8 + 60, "registrations and scans are all in the store"
    assert report.tables_compared >= 15
    assert (report.orders_compared, report.packlists_compared) == (8, 2)
    assert report.feed_items_compared == report.events
    assert "line_totals" in report.status_before_writes


def test_the_status_check_reads_positions_and_heads() -> None:
    text = (
        "projection       position       head  lag events    lag s  rebuild\n"
        "line_totals       230,411    200,000      -30,411    0.000  -\n"
        "order_status          200        200           0    0.000  -\n"
    )
    assert backup_drill.projection_status(text) == {
        "line_totals": (230_411, 200_000),
        "order_status": (200, 200),
    }
