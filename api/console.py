"""Readable log lines for a person at a terminal: rich's logging handler.

`logging_config(fmt="text")` (api/observability.py) builds its handlers here. Times are
the wall clock (a person reads them against a watch); levels are coloured; library
messages are printed as they are (no markup), only the request log marks up its status.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

from api.observability import request_id_var


class RequestIdFilter(logging.Filter):
    """A line written while handling a request ends with that request's id, as the JSON
    form carries it in `request_id` (the request log line has it already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id_var.get()
        if rid is not None and not getattr(record, "markup", False):
            record.msg = f"{record.getMessage()} (request id {rid})"
            record.args = ()
        return True


def log_handler(stream: str = "stderr") -> logging.Handler:
    """A rich handler writing to stderr (logs) or stdout (the request log)."""
    console = Console(stderr=stream == "stderr", soft_wrap=True)
    handler = RichHandler(
        console=console,
        show_path=False,
        markup=False,
        rich_tracebacks=False,
        log_time_format="[%X]",
        omit_repeated_times=False,
    )
    handler.addFilter(RequestIdFilter())
    return handler
