"""Give a worker thread its name at the OS level too (Linux), so `top -H`, `ps -L` and
/proc/<pid>/task/*/comm tell the group-commit writer and the projection runner apart
from the event loop (bench/cpu.py reads them). A no-op where prctl is unavailable."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_PR_SET_NAME = 15


def name_this_thread(name: str) -> None:
    """Set the calling thread's OS name (at most 15 bytes are kept)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
