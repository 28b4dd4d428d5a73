"""Readable log lines for a person at a terminal: rich's logging handler.

`logging_config(fmt="text")` (api/observability.py) builds its handlers here. Times are
the wall clock (a person reads them against a watch); levels are coloured; library
messages are printed as they are (no markup), only the request log marks up its status.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler


def log_handler(stream: str = "stderr") -> logging.Handler:
    """A rich handler writing to stderr (logs) or stdout (the request log)."""
    console = Console(stderr=stream == "stderr", soft_wrap=True)
    return RichHandler(
        console=console,
        show_path=False,
        markup=False,
        rich_tracebacks=False,
        log_time_format="[%X]",
        omit_repeated_times=False,
    )
