"""How JSON comes back from PostgreSQL's json and jsonb columns: through orjson.

psycopg decodes those columns with the standard library's `json.loads` unless told
otherwise. Two reasons to tell it:

- Numbers. The API refuses integers outside 64 bits and non-finite numbers
  (ledger/domain/inputs.py), so every number in a stored document is a 64-bit integer or a
  finite float. jsonb prints a float in full, though: 1e20 comes back as
  100000000000000000000. The standard library read that as an integer no encoder of
  ours writes back (orjson refuses integers beyond 64 bits), so GET order answered 500
  and the order_status projection stopped at that order. orjson reads it as the float
  it was, and keeps every integer within 64 bits exact.
- Speed: loading the order states a projection step folds into was about a third of
  the step's Python time, most of it in `json.loads` (bench/rebuild.py).

Anything orjson refuses goes to the standard library, as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from psycopg.types.json import set_json_loads


def loads_json(data: bytes | bytearray | memoryview | str) -> Any:
    """A json or jsonb value as Python, by orjson (the standard library for the rest)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(bytes(data) if isinstance(data, memoryview) else data)


def register() -> None:
    """Make `loads_json` psycopg's decoder of json and jsonb, process-wide."""
    set_json_loads(loads_json)
