"""The status rule and the counts read an order's entries exactly as the spec's fields say.

The state works out what the rules need of a document once (ledger/domain/status.py); these
properties hold it to the plain reading of the entries, for any document whose products
appear once each (in pieces) and any lines. A product in several entries, and other
units, are split by ledger.domain.counting (tests/domain/test_counting.py).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.amounts import Amounts
from ledger.domain.counting import Lines
from ledger.domain.status import OrderState


def plain_counts(entries: list[Any], lines: Lines) -> tuple[int, int, int]:
    total = packed = canceled = 0
    for entry in (e for e in entries if isinstance(e, dict)):
        total += int(entry.get("totalCount") or 0)
        line = lines.get(str(entry.get("productId")), {}).get("H87", Amounts())
        packed += line.packed
        canceled += line.canceled
    return total, packed, canceled


def plain_resolved(entries: list[Any], lines: Lines) -> bool:
    entries = [e for e in entries if isinstance(e, dict)]
    if not entries:
        return False
    for entry in entries:
        line = lines.get(str(entry.get("productId")), {}).get("H87", Amounts())
        packed, canceled = line.packed, line.canceled
        if entry.get("weightDependent"):
            if packed <= 0:
                return False
        elif packed + canceled < int(entry.get("totalCount") or 0):
            return False
    return True


products = st.sampled_from(["p1", "p2", "3", 3, None])
entries = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"productId": products},
            optional={
                "totalCount": st.none() | st.integers(0, 5),
                "weightDependent": st.none() | st.booleans(),
            },
        ),
        st.just("not an entry"),
    ),
    max_size=6,
    # one entry per product (3 and "3" are the same product): see the module docstring
    unique_by=lambda e: str(e.get("productId")) if isinstance(e, dict) else "",
)
lines = st.dictionaries(
    st.sampled_from(["p1", "p2", "3", "None"]),
    st.fixed_dictionaries({"H87": st.builds(Amounts, *[st.integers(0, 6)] * 3)}),
)


@given(first=entries, second=entries, lines=lines)
def test_counts_and_resolution_follow_the_current_documents_entries(
    first: list[Any], second: list[Any], lines: Lines
) -> None:
    state = OrderState("t", "o1", document={"entries": first}, lines=lines)
    assert state.counts() == plain_counts(first, lines)
    assert state.all_entries_resolved() == plain_resolved(first, lines)
    state.document = {"entries": second}  # re-registered
    assert state.counts() == plain_counts(second, lines)
    assert state.all_entries_resolved() == plain_resolved(second, lines)
    state.document = None
    assert state.counts() == (0, 0, 0)
    assert state.all_entries_resolved() is False
