"""Stored events are written in the library's JSON format, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from ledger.transcoder import OrjsonTranscoder


def library_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


LIBRARY = library_transcoder()
OURS = OrjsonTranscoder()

flat_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: those go to the library's encoder
    st.text(),  # unicode, control characters, quotes
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])),
)


@given(st.dictionaries(st.text(), flat_values, max_size=20))
def test_a_flat_state_is_encoded_to_the_same_bytes_as_the_librarys(state: dict) -> None:
    try:
        expected = LIBRARY.encode(state)
    except UnicodeEncodeError:  # a lone surrogate: neither may store it
        try:
            OURS.encode(state)
        except (UnicodeEncodeError, TypeError, ValueError):
            return
        raise AssertionError("encoded a string the library refuses") from None
    assert OURS.encode(state) == expected
    assert OURS.decode(expected) == LIBRARY.decode(expected)


def test_a_state_with_nested_or_other_values_is_left_to_the_librarys_encoder() -> None:
    state = {
        "id": uuid4(),
        "price": Decimal("1.50"),
        "entries": [{"at": datetime(2024, 5, 1, tzinfo=UTC), "n": 1}],
    }
    assert OURS.encode(state) == LIBRARY.encode(state)
    assert OURS.decode(OURS.encode(state)) == state
