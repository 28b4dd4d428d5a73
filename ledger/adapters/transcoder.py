"""The library's JSON format for stored events, written by orjson.

eventsourcing's JSONTranscoder encodes with the standard library's pure-Python
encoder; on the ingest path that was a measurable share of each group commit
(bench/append.py). This transcoder writes the same bytes for the flat states our
events have (strings, integers, booleans, None, datetimes), and hands anything else
to the library's own encoder, so the stored format never depends on which one ran.
Decoding stays the library's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    UUIDAsHex,
)

_FLAT = (str, int, bool, type(None), datetime)


class OrjsonTranscoder(JSONTranscoder):
    """JSONTranscoder whose encode is orjson's for flat event states."""

    def __init__(self) -> None:
        super().__init__()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            self.register(transcoding)

    def encode(self, obj: Any) -> bytes:
        if type(obj) is dict and all(type(v) in _FLAT for v in obj.values()):
            try:
                return orjson.dumps(
                    obj, default=self._encode_obj, option=orjson.OPT_PASSTHROUGH_DATETIME
                )
            except orjson.JSONEncodeError:
                pass  # e.g. an integer beyond 64 bits: the library's encoder decides
        return super().encode(obj)
