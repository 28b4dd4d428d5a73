"""Stored states: compressed with the package's dictionary, read back whichever way
they were stored (ledger/adapters/compression.py)."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from uuid import uuid4

import orjson
from eventsourcing.persistence import Mapper
from hypothesis import given
from hypothesis import strategies as st

from devtools.harness.support import packing_event
from devtools.state_dictionary import SIZE, samples
from ledger.adapters.compression import (
    DICTIONARY_V1,
    MARK_V1,
    StateCompressor,
    compress_state,
    state_json,
)
from ledger.adapters.encoding import make_mapper, make_transcoder, stored_state
from ledger.domain.events import PackingEventRecorded, line_stream_id
from ledger.domain.packing import Attribution

# States compressed with dictionary 1 are readable only with it: a changed file would
# make every such state in every store unreadable. A new dictionary is a new mark.
DICTIONARY_V1_SHA256 = "bd5ca5e61cd53efa6664ad0f4552403e3bbffbc97d26960f6f004663fc86b9a7"

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_the_dictionary_is_the_one_states_were_written_with() -> None:
    assert hashlib.sha256(DICTIONARY_V1).hexdigest() == DICTIONARY_V1_SHA256


def test_the_dictionary_is_what_its_script_trains() -> None:
    import zstandard

    trained = zstandard.train_dictionary(SIZE, samples(), level=3)  # type: ignore[arg-type]
    assert trained.as_bytes() == DICTIONARY_V1


@given(st.dictionaries(st.text(), JSON_VALUES, max_size=8))
def test_any_json_state_comes_back_as_it_went_in(state: dict[str, object]) -> None:
    plain = orjson.dumps(state)
    stored = compress_state(plain)
    assert stored[:1] == MARK_V1
    assert state_json(stored) == plain
    assert state_json(memoryview(stored)) == plain


def test_a_plain_json_state_is_read_as_it_is() -> None:
    plain = b'{"tenant":"demo","order_id":"o1"}'
    assert state_json(plain) == plain
    assert state_json(memoryview(plain)) == plain


def _scan_state() -> bytes:
    scan = packing_event(str(uuid4()), order_id="EON1000231", product_id="prod-00042")
    recorded = {"_type_": "datetime_iso", "_data_": datetime.now(UTC).isoformat()}
    state = stored_state(scan, Attribution(user="scanner-7"), recorded)
    assert state is not None
    return state


def test_a_scan_is_stored_in_under_a_third_of_its_json() -> None:
    states = [_scan_state() for _ in range(200)]
    plain = sum(map(len, states))
    stored = sum(len(compress_state(s)) for s in states)
    assert stored * 3 < plain, (stored / len(states), plain / len(states))


def test_the_librarys_mapper_reads_both_kinds_and_writes_as_configured() -> None:
    event = PackingEventRecorded(
        originator_id=line_stream_id("demo", "o1", "p1"),
        originator_version=1,
        timestamp=datetime.now(UTC),
        tenant="demo",
        order_id="o1",
        event_id="e1",
        product_id="p1",
        delivery_cycle=None,
        picked=1,
        packed=1,
        canceled=0,
        supplier_id=None,
        unit="H87",
        event_time="2026-11-30T10:00:00.000Z",
        site="main",
        book_product=None,
        user=None,
        saas_token=None,
    )
    compressed = make_mapper().to_stored_event(event)
    plain = make_mapper(compress=False).to_stored_event(event)
    assert compressed.state[:1] == MARK_V1
    assert plain.state == Mapper(transcoder=make_transcoder()).to_stored_event(event).state
    for mapper in (make_mapper(), make_mapper(compress=False)):
        assert mapper.to_domain_event(compressed) == event
        assert mapper.to_domain_event(plain) == event
    assert StateCompressor(compress=False).compress(plain.state) == plain.state


def test_threads_compressing_and_reading_at_once_each_get_their_own_states() -> None:
    states = [_scan_state() for _ in range(50)]
    errors: list[str] = []

    def work() -> None:
        for _ in range(40):
            for s in states:
                if state_json(compress_state(s)) != s:
                    errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
