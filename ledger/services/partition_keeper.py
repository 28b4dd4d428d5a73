"""Keeps the event store's next partitions made ahead of the appends, inside `serve`.

An append whose position has no partition fails (there is no default partition:
ledger/adapters/partitions.py says why), so every serving process looks every few
minutes and makes what is missing. Any process may do it: the work is serialised by an
advisory lock and is nothing when the partitions are already there. At 50 million
positions a partition and two ahead, this is months of margin; the check at start-up
(`pickpack migrate`, run by every process) and `pickpack store partitions` (a cron job)
are the other two ways.
"""

from __future__ import annotations

import logging
import threading

from ledger.adapters import partitions
from ledger.adapters.database import for_role

log = logging.getLogger(__name__)
CHECK_SECONDS = 300.0


class PartitionKeeper:
    def __init__(self, database_url: str, every: float = CHECK_SECONDS) -> None:
        self.database_url = for_role(database_url, "partitions")
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="partition-keeper", daemon=True)

    def start(self) -> PartitionKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                made = partitions.ensure_ahead(self.database_url)
                if made:
                    log.info("made the store's next partitions: %s", ", ".join(made))
            except Exception:  # the next round tries again; appends are months from need
                log.exception("could not make the store's next partitions")
