"""Stored events are written in the library's JSON format, byte for byte."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from ledger.adapters.encoding import PACKING_EVENT_TOPIC, recorded_event, stored_state
from ledger.adapters.json_columns import loads_json
from ledger.adapters.transcoder import OrjsonTranscoder
from ledger.domain.packing import Attribution, PackingEvent


def library_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


LIBRARY = library_transcoder()
LIBRARY_MAPPER: Mapper = Mapper(transcoder=LIBRARY)
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


# -- the group commit's stored states ------------------------------------------------

texts = st.text()  # unicode, control characters, quotes; lone surrogates too
maybe_text = st.none() | texts
amounts = st.integers(min_value=0)  # beyond 64 bits too: those go to the mapper


@given(
    event=st.builds(
        PackingEvent,
        tenant=texts,
        event_id=texts,
        order_id=texts,
        product_id=texts,
        unit=texts,
        event_time=texts,
        site=texts,
        picked=amounts,
        packed=amounts,
        canceled=amounts,
        delivery_cycle=maybe_text,
        supplier_id=maybe_text,
        book_product=st.none() | st.booleans(),
    ),
    who=st.builds(Attribution, user=maybe_text, saas_token=maybe_text),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_a_recorded_scan_is_stored_as_the_librarys_mapper_would_store_it(
    event: PackingEvent, who: Attribution, at: datetime
) -> None:
    stream, version = uuid4(), 7
    try:
        expected = LIBRARY_MAPPER.to_stored_event(recorded_event(event, who, stream, version, at))
    except UnicodeEncodeError:  # a lone surrogate: the scan is refused before this
        return
    state = stored_state(event, who, {"_type_": "datetime_iso", "_data_": at.isoformat()})
    if max(event.picked, event.packed, event.canceled) < 2**64:
        assert state == expected.state
    else:
        assert state is None  # the store then asks the mapper
    assert expected.topic == PACKING_EVENT_TOPIC


# -- JSON read back from json and jsonb columns -------------------------------------


def test_json_columns_read_back_as_the_numbers_the_api_accepted() -> None:
    # jsonb prints 1e20 in full: it was a float (the API refuses larger integers)
    assert loads_json(b'{"a": 100000000000000000000}') == {"a": 1e20}
    assert isinstance(loads_json(b"100000000000000000000"), float)
    assert loads_json(memoryview(b"[9223372036854775807, -9223372036854775808, 0.1]")) == [
        2**63 - 1,
        -(2**63),
        0.1,
    ]
    # what orjson refuses goes to the standard library, as before
    beyond_a_double = "1" + "0" * 400
    assert loads_json(memoryview(beyond_a_double.encode())) == json.loads(beyond_a_double)
