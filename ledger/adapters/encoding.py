"""Encoding ledger events into the library's stored format, and the event mapper.

The stored format is the library's (its Mapper and JSON transcoder, orjson-written);
these helpers write the same bytes faster on the ingest path (tests/domain/test_transcoder.py
holds them byte for byte equal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, Transcoder
from eventsourcing.utils import get_topic

from ledger.adapters.compression import StateCompressor
from ledger.adapters.transcoder import OrjsonTranscoder
from ledger.domain.events import PackingEventRecorded
from ledger.domain.packing import Attribution, PackingEvent


def make_transcoder() -> Transcoder:
    """The library's JSON format with its UUID, Decimal and datetime transcodings."""
    return OrjsonTranscoder()


def make_mapper(compress: bool = True) -> Mapper[UUID]:
    """The library's mapper with our transcoder: how every ledger event is stored.

    Its compressor reads compressed and plain states alike; `compress` says whether
    new states are written compressed (ledger/adapters/compression.py)."""
    return Mapper(transcoder=make_transcoder(), compressor=StateCompressor(compress))


PACKING_EVENT_TOPIC = get_topic(PackingEventRecorded)


# Where each field of PackingEventRecorded comes from, read off the class itself: the
# event class is the one definition of what a recorded scan holds. Fields named like an
# Attribution's come from it, `timestamp` is the recording time, the rest are the scan's.
_ATTRIBUTION = {f.name for f in dataclasses.fields(Attribution)}
_SCAN = {f.name for f in dataclasses.fields(PackingEvent)}
_STREAM = ("originator_id", "originator_version")


def _source(name: str) -> str:
    if name == "timestamp":
        return "timestamp"
    if name in _ATTRIBUTION:
        return f"who.{name}"
    if name in _SCAN:
        return f"event.{name}"
    raise TypeError(f"PackingEventRecorded.{name}: neither a scan's field nor attribution")


_FIELDS = [f.name for f in dataclasses.fields(PackingEventRecorded) if f.name not in _STREAM]


def _compile(source: str, name: str) -> Any:
    """A function from generated source, as `dataclasses` builds `__init__`: the code is
    a plain dict literal or call, as fast as written by hand, yet follows the class."""
    namespace: dict[str, Any] = {
        "PackingEventRecorded": PackingEventRecorded,
        "dumps": orjson.dumps,
        "JSONEncodeError": orjson.JSONEncodeError,
    }
    exec(source, namespace)  # the source is built above from field names only
    return namespace[name]


# recorded_event(event, who, stream, version, timestamp): the domain event that records
# an accepted scan in its line's stream.
recorded_event: Callable[[PackingEvent, Attribution, UUID, int, datetime], PackingEventRecorded]
recorded_event = _compile(
    "def recorded_event(event, who, stream, version, timestamp):\n"
    "    return PackingEventRecorded(originator_id=stream, originator_version=version, "
    + ", ".join(f"{name}={_source(name)}" for name in _FIELDS)
    + ")\n",
    "recorded_event",
)

# stored_state(event, who, recorded_at): the stored state of recorded_event's event, as
# the library's mapper writes it (vars(event) without the stream's id and version, in
# field order), straight from the scan. The mapper builds the domain event, copies its
# attributes and checks each value's type first, about a fifth of the append's Python
# time per batch (`python bench/append.py`). `recorded_at` is
# the timestamp in the library's datetime transcoding. tests/domain/test_transcoder.py holds the two
# byte for byte equal. None if orjson cannot write a value (an integer beyond 64 bits): the mapper
# then decides, as it would have.
stored_state: Callable[[PackingEvent, Attribution, dict[str, str]], bytes | None]
stored_state = _compile(
    "def stored_state(event, who, timestamp):\n"
    "    try:\n"
    "        return dumps({" + ", ".join(f"{name!r}: {_source(name)}" for name in _FIELDS) + "})\n"
    "    except JSONEncodeError:\n"
    "        return None\n",
    "stored_state",
)
