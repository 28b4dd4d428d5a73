"""Stored states compressed with zstd and a dictionary of the ledger's own JSON.

A packing event's stored state is about 350 bytes of JSON, most of it the same keys in
every event; the row around it and its indexes cost about as much again. PostgreSQL
compresses only values in rows over about 2 KB, so it never compresses these. zstd
with a dictionary trained on the ledger's own states writes the same state in 75 to 100
bytes and reads it back in about 3 us (`python bench/compression.py`; docs/BENCHMARKS.md,
"Stored states compressed").

The format of a stored state is then either

- JSON, as the library's transcoder writes it (every state recorded before compression,
  and every state recorded with PICKPACK_COMPRESS_EVENTS=false): it starts with `{`;
- or MARK_V1 followed by a zstd frame (magicless, with its content size, no checksum:
  PostgreSQL checks its own pages) compressed with DICTIONARY_V1.

Every reader goes through `state_json`, so both kinds of rows read the same, in the
same store, forever. The dictionary is part of the stored format: a state written with
it can only be read with it, so it never changes (tests/domain/test_compression.py pins
its digest). A better dictionary would be a new mark (0x02) beside this one.
"""

from __future__ import annotations

import threading
from importlib import resources

import zstandard
from eventsourcing.persistence import Compressor

# The first byte of a compressed state. JSON states start with "{" (0x7b), so a first
# byte of 0x01 can only mean "zstd frame, dictionary 1".
MARK_V1 = b"\x01"
_MARK_BYTE = MARK_V1[0]

# Dictionary 1, trained on the ledger's own stored states (devtools/state_dictionary.py
# says how). Its digest is pinned by tests/domain/test_compression.py.
DICTIONARY_V1 = (resources.files("ledger.adapters") / "state-dictionary-v1.zdict").read_bytes()
_DICTIONARY = zstandard.ZstdCompressionDict(DICTIONARY_V1, dict_type=zstandard.DICT_TYPE_FULLDICT)

# Level 3, zstd's default: on states this small a higher level writes no fewer bytes
# and costs tens of microseconds more per event.
_PARAMETERS = zstandard.ZstdCompressionParameters.from_level(
    3,
    format=zstandard.FORMAT_ZSTD1_MAGICLESS,
    write_content_size=True,
    write_checksum=False,
    write_dict_id=False,
)

# zstandard's (de)compressors must not be used by two threads at once; the service
# appends and reads from several threads, so each thread keeps its own pair.
_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    try:
        return _local.compressor  # type: ignore[no-any-return]
    except AttributeError:
        _local.compressor = zstandard.ZstdCompressor(
            dict_data=_DICTIONARY, compression_params=_PARAMETERS
        )
        return _local.compressor  # type: ignore[no-any-return]


def _decompressor() -> zstandard.ZstdDecompressor:
    try:
        return _local.decompressor  # type: ignore[no-any-return]
    except AttributeError:
        _local.decompressor = zstandard.ZstdDecompressor(
            dict_data=_DICTIONARY, format=zstandard.FORMAT_ZSTD1_MAGICLESS
        )
        return _local.decompressor  # type: ignore[no-any-return]


def compress_state(state: bytes) -> bytes:
    """A JSON state as it is stored compressed: MARK_V1 and a zstd frame."""
    return MARK_V1 + _compressor().compress(state)


def state_json(stored: bytes | memoryview) -> bytes:
    """A stored state's JSON, whichever way it was stored (compressed or not)."""
    if stored[0] == _MARK_BYTE:
        return _decompressor().decompress(stored[1:])
    return bytes(stored)


def states_json(stored: list[bytes]) -> list[bytes]:
    """`state_json` of many states, without a Python call per state: a projection step
    or a rebuild decodes a batch of thousands at once (bench/rebuild.py)."""
    decompress, mark = _decompressor().decompress, _MARK_BYTE
    return [decompress(s[1:]) if s[0] == mark else bytes(s) for s in stored]


class StateCompressor(Compressor):
    """The library's compressor hook (its Mapper compresses after transcoding and
    decompresses before): compressing new states or not, reading both kinds."""

    def __init__(self, compress: bool = True) -> None:
        self.enabled = compress

    def compress(self, data: bytes) -> bytes:
        return compress_state(data) if self.enabled else data

    def decompress(self, data: bytes) -> bytes:
        return state_json(data)
