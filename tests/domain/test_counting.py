"""The counting rules (ledger.domain.counting): a product in several entries, units.

Each example is one the service used to get wrong; the properties hold for any document.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain import counting
from ledger.domain.amounts import Amounts
from ledger.domain.counting import calculation_entries, split
from ledger.domain.status import IN_PROGRESS, PRE_PACKED, OrderState

D2 = [
    {"entryId": "e1", "productId": "p1", "totalCount": 3, "orderUnit": "H87"},
    {"entryId": "e2", "productId": "p1", "totalCount": 3, "orderUnit": "H87"},
]
DK = [{"entryId": "e1", "productId": "p1", "totalCount": 2, "orderUnit": "KGM"}]


def figures(entries: list[dict[str, Any]], lines: counting.Lines) -> list[tuple[int, int, int]]:
    return [(c.picked, c.packed, c.canceled) for c in split(entries, lines).entries]


def test_packed_fills_the_entries_in_document_order() -> None:
    assert figures(D2, {"p1": {"H87": Amounts(0, 3, 0)}}) == [(0, 3, 0), (0, 0, 0)]
    # then 2 packed and 1 cancelled more: e1 stays full, e2 takes the rest
    assert figures(D2, {"p1": {"H87": Amounts(0, 5, 1)}}) == [(0, 3, 0), (0, 2, 1)]


def test_cancelled_fills_what_packed_left_open_and_the_excess_stays_on_the_last() -> None:
    ones = [{**e, "totalCount": 1} for e in D2]
    assert figures(ones, {"p1": {"H87": Amounts(3, 3, 1)}}) == [(1, 1, 0), (2, 2, 1)]
    zeros = [{**e, "totalCount": 0} for e in D2]
    assert figures(zeros, {"p1": {"H87": Amounts(0, 2, 0)}}) == [(0, 0, 0), (0, 2, 0)]


def test_status_uses_the_split_an_untouched_second_entry_keeps_it_in_progress() -> None:
    state = OrderState("t", "o1", document={"entries": D2}, active=True)
    state.lines = {"p1": {"H87": Amounts(0, 3, 0)}}
    assert state.derived_status() == IN_PROGRESS
    assert state.counts() == (6, 3, 0)
    state.lines = {"p1": {"H87": Amounts(0, 6, 0)}}
    assert state.derived_status() == PRE_PACKED


def test_finish_sends_the_split_not_the_line_on_every_entry() -> None:
    body = calculation_entries(D2, {"p1": {"H87": Amounts(0, 3, 0)}})
    assert body == [
        {"entryId": "e1", "deliveredAmount": 3, "deliveredAmountInPc": 3, "unit": "H87"},
        {"entryId": "e2", "deliveredAmount": 0, "deliveredAmountInPc": 0, "unit": "H87"},
    ]


def test_units_are_never_added_the_rest_is_unreconciled() -> None:
    s = split(DK, {"p1": {"KGM": Amounts(0, 1, 0), "GRM": Amounts(0, 500, 0)}})
    assert [(c.packed) for c in s.entries] == [1]
    assert s.unreconciled == [
        {"productId": "p1", "unit": "GRM", "pickedAmount": 0, "packedAmount": 500,
         "canceledAmount": 0}
    ]  # fmt: skip
    # 1000 GRM is a whole KGM: it counts, and the measure gives the pieces
    measured = [{**DK[0], "unitPricingMeasure": {"value": 500, "unitCode": "GRM"}}]
    s = split(measured, {"p1": {"KGM": Amounts(0, 1, 0), "GRM": Amounts(0, 1000, 0)}})
    assert s.entries[0].packed == 2 and s.unreconciled == []
    assert counting.entry_pieces(measured[0], s.entries[0]) == 4


def test_a_weight_dependent_entry_is_not_resolved_by_grams_it_cannot_count() -> None:
    weighed = [{**DK[0], "weightDependent": True}]
    state = OrderState("t", "o1", document={"entries": weighed}, active=True)
    state.lines = {"p1": {"GRM": Amounts(0, 300, 0)}}
    assert state.derived_status() == IN_PROGRESS
    assert state.split().unreconciled[0]["packedAmount"] == 300


def test_the_calculation_unit_is_the_entrys_order_unit_and_nothing_null_is_sent() -> None:
    d1 = [{"entryId": "e1", "productId": "p1", "totalCount": 1, "orderUnit": "H87"}]
    assert calculation_entries(d1, {"p1": {"KGM": Amounts(0, 2, 0)}}) == [
        {"entryId": "e1", "deliveredAmount": 0, "deliveredAmountInPc": 0, "unit": "H87"}
    ]
    no_unit = [{"entryId": "e1", "productId": "p1", "totalCount": 1}]
    assert calculation_entries(no_unit, {"p1": {"H87": Amounts(0, 1, 0)}})[0]["unit"] == "H87"
    # a KGM entry without a measure: pieces unknown, so the key is left out (not null)
    assert calculation_entries(DK, {}) == [{"entryId": "e1", "deliveredAmount": 0, "unit": "KGM"}]


def test_an_order_known_only_from_scans_sends_one_entry_per_product_and_unit() -> None:
    lines = {"p1": {"H87": Amounts(0, 2, 0), "KGM": Amounts(0, 1, 0)}}
    assert calculation_entries(None, lines) == [
        {"entryId": "p1", "deliveredAmount": 2, "deliveredAmountInPc": 2, "unit": "H87"},
        {"entryId": "p1", "deliveredAmount": 1, "unit": "KGM"},
    ]


def test_a_product_the_order_does_not_list_is_unreconciled() -> None:
    d1 = [{"entryId": "e1", "productId": "p1", "totalCount": 1, "orderUnit": "H87"}]
    assert split(d1, {"p2": {"H87": Amounts(0, 1, 0)}}).unreconciled == [
        {"productId": "p2", "unit": "H87", "pickedAmount": 0, "packedAmount": 1,
         "canceledAmount": 0}
    ]  # fmt: skip


def test_pieces_for_a_weighed_entry_feed_its_pieces_not_its_count() -> None:
    s = split(DK, {"p1": {"H87": Amounts(0, 3, 0)}})
    assert s.entries[0].packed == 0 and s.entries[0].extra_pieces == 3
    assert counting.entry_pieces(DK[0], s.entries[0]) == 3
    assert s.unreconciled[0]["packedAmount"] == 3


units = st.sampled_from(["H87", "EA", "KGM", "GRM", "LTR", "MLT"])
entry = st.fixed_dictionaries(
    {"productId": st.sampled_from(["p1", "p2"]), "totalCount": st.integers(0, 5),
     "orderUnit": units}
)  # fmt: skip
amounts = st.builds(Amounts, *[st.integers(0, 3000)] * 3)


@given(
    entries=st.lists(entry, max_size=5),
    lines=st.dictionaries(st.sampled_from(["p1", "p2", "p3"]), st.dictionaries(units, amounts)),
)
def test_entries_and_unreconciled_always_add_up_to_the_line(
    entries: list[dict[str, Any]], lines: counting.Lines
) -> None:
    """Nothing is lost or counted twice: per product, figure and dimension, what the
    entries count plus what stays unreconciled equals the line (in the base unit)."""
    from ledger.domain.units import UNITS

    s = split(entries, lines)
    for product, by_unit in lines.items():
        for f, name in enumerate(("pickedAmount", "packedAmount", "canceledAmount")):
            figure = ("picked", "packed", "canceled")[f]
            by_dimension: dict[str, Any] = {}
            for unit, t in by_unit.items():
                dim, factor = UNITS[unit]
                by_dimension[dim] = by_dimension.get(dim, 0) + getattr(t, figure) * factor
            for e, c in zip(entries, s.entries, strict=True):
                if e["productId"] == product:
                    dim, factor = UNITS[e["orderUnit"]]
                    counted = (c.picked, c.packed, c.canceled)[f]
                    by_dimension[dim] = by_dimension.get(dim, 0) - counted * factor
            for u in s.unreconciled:
                if u["productId"] == product:
                    dim, factor = UNITS[u["unit"]]
                    by_dimension[dim] = by_dimension.get(dim, 0) - u[name] * factor
            assert all(v == 0 for v in by_dimension.values()), (product, name, by_dimension)


@given(
    entries=st.lists(entry, max_size=5),
    lines=st.dictionaries(
        st.sampled_from(["p1", "p2", "p3"]),
        st.dictionaries(units, st.builds(Amounts, *[st.integers(0, 8)] * 3), max_size=2),
    ),
    weighed=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_the_status_plans_shortcut_agrees_with_the_split(
    entries: list[dict[str, Any]], lines: counting.Lines, weighed: list[bool]
) -> None:
    entries = [{**e, "weightDependent": w} for e, w in zip(entries, weighed, strict=False)]
    plan = counting.Plan(entries)
    s = split(entries, lines)
    expected = bool(entries) and all(
        counting.resolved(e, c) for e, c in zip(entries, s.entries, strict=True)
    )
    assert plan.resolved(lines) == expected
    total = sum(e["totalCount"] for e in entries)
    packed, canceled = sum(c.packed for c in s.entries), sum(c.canceled for c in s.entries)
    assert plan.counts(lines) == (total, packed, canceled)
