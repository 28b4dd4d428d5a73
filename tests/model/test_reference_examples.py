"""The reference model on its own: hand-computed values from the rules (no database).

Each figure below is worked out by hand from docs/explanation/semantics.md, not from the model, so a
slip in the model fails here before it is held against the service.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from tests.model.reference import IN_PROGRESS, PACKED, PRE_PACKED, Ledger, Status, _fill
from tests.model.units import convert, is_piece

SPEC = Path(__file__).resolve().parents[1] / "spec" / "emporix-pick-pack-api.yml"

ORDER: dict[str, Any] = {
    "siteCode": "main",
    "delivery": {"deliveryTimeModel": {"deliveryDate": "2030-01-01"}},
    "entries": [
        {"entryId": "e1", "productId": "p1", "totalCount": 3, "orderUnit": "H87"},
        {"entryId": "e2", "productId": "p1", "totalCount": 3, "orderUnit": "H87"},
    ],
}


def scan(
    event_id: str, product: str = "p1", unit: str = "H87", order: str = "o1", **amounts: int
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "orderNumber": order,
        "productId": product,
        "unit": unit,
        "pickedAmount": amounts.get("picked", 0),
        "packedAmount": amounts.get("packed", 0),
        "canceledAmount": amounts.get("canceled", 0),
        "timestamp": f"2026-01-01T00:00:{int(event_id[1:]) % 60:02d}.000Z",
        "site": "main",
    }


def counts(ledger: Ledger, order: str = "o1") -> list[tuple[str, int, int, int]]:
    detail = ledger.order_detail(order)
    assert detail is not None
    return [
        (e["entryId"], e["pickedCount"], e["packedCount"], e["canceledCount"])
        for e in detail["entries"]
    ]


def test_a_product_in_two_entries_fills_the_first_then_the_second() -> None:
    led = Ledger()
    led.register("o1", ORDER)
    assert led.post_event(scan("s1", packed=3, picked=3)).status == 200
    assert counts(led) == [("e1", 3, 3, 0), ("e2", 0, 0, 0)]
    detail = led.order_detail("o1")
    assert detail is not None and detail["packingStatus"] == IN_PROGRESS  # e2 untouched
    assert led.finish("o1").queued == [
        (
            "o1",
            {
                "entries": [
                    {
                        "entryId": "e1",
                        "deliveredAmount": 3,
                        "deliveredAmountInPc": 3,
                        "unit": "H87",
                    },
                    {
                        "entryId": "e2",
                        "deliveredAmount": 0,
                        "deliveredAmountInPc": 0,
                        "unit": "H87",
                    },
                ]
            },
        )
    ]


def test_cancelled_fills_what_packed_left_open() -> None:
    led = Ledger()
    led.register("o1", ORDER)
    led.post_event(scan("s1", packed=3))
    led.post_event(scan("s2", packed=2, canceled=1))
    # packed 5: e1 3, e2 2; cancelled 1 fills e2's open 1.
    assert counts(led) == [("e1", 0, 3, 0), ("e2", 0, 2, 1)]
    detail = led.order_detail("o1")
    assert detail is not None and detail["packingStatus"] == PRE_PACKED
    (row,) = led.packlist("main", "2030-01-01")
    assert (row["productsTotal"], row["productsPacked"], row["productsCanceled"]) == (6, 5, 1)


def test_what_exceeds_the_last_entry_stays_on_the_last() -> None:
    led = Ledger()
    led.register("o1", ORDER)
    led.post_event(scan("s1", packed=8, picked=7, canceled=2))
    # packed 8: e1 3, e2 5 (excess); cancelled: open is 0 and 0, so all on e2; picked 3 + 4.
    assert counts(led) == [("e1", 3, 3, 0), ("e2", 4, 5, 2)]


def test_a_weight_entry_never_adds_grams_to_kilograms_until_they_make_a_whole_kilogram() -> None:
    led = Ledger()
    doc = {
        "entries": [{"entryId": "w", "productId": "cheese", "totalCount": 2, "orderUnit": "KGM"}]
    }
    led.register("o1", doc)
    led.post_event(scan("s1", product="cheese", unit="KGM", packed=1))
    led.post_event(scan("s2", product="cheese", unit="GRM", packed=500))
    detail = led.order_detail("o1")
    assert detail is not None
    assert detail["entries"][0]["packedCount"] == 1  # not 501, not 1.5
    assert "packedAmountInPc" not in detail["entries"][0]  # no measure: unknown, left out
    assert detail["unreconciledAmounts"] == [
        {
            "productId": "cheese",
            "unit": "GRM",
            "pickedAmount": 0,
            "packedAmount": 500,
            "canceledAmount": 0,
        }
    ]
    led.post_event(scan("s3", product="cheese", unit="GRM", packed=500))  # 1000 GRM = 1 KGM
    detail = led.order_detail("o1")
    assert detail is not None
    assert detail["entries"][0]["packedCount"] == 2
    assert "unreconciledAmounts" not in detail


def test_a_unit_of_another_dimension_is_never_counted() -> None:
    led = Ledger()
    led.register(
        "o1",
        {"entries": [{"entryId": "w", "productId": "p1", "totalCount": 2, "orderUnit": "KGM"}]},
    )
    led.post_event(scan("s1", unit="LTR", packed=2))
    detail = led.order_detail("o1")
    assert detail is not None and detail["entries"][0]["packedCount"] == 0
    assert detail["unreconciledAmounts"][0]["unit"] == "LTR"


def test_pieces_of_a_weighed_entry_feed_packed_amount_in_pc() -> None:
    led = Ledger()
    entry = {
        "entryId": "w",
        "productId": "p1",
        "totalCount": 1,
        "orderUnit": "KGM",
        "unitPricingMeasure": {"value": 500, "unitCode": "GRM"},
    }
    led.register("o1", {"entries": [entry]})
    led.post_event(scan("s1", unit="KGM", packed=1))  # 1 KGM = 1000 GRM = 2 pieces of 500 g
    led.post_event(scan("s2", unit="H87", packed=1))  # and one more piece
    detail = led.order_detail("o1")
    assert detail is not None
    assert (detail["entries"][0]["packedCount"], detail["entries"][0]["packedAmountInPc"]) == (1, 3)
    body = led.calculation("o1")
    assert body == {
        "entries": [{"entryId": "w", "deliveredAmount": 1, "deliveredAmountInPc": 3, "unit": "KGM"}]
    }


def test_finish_twice_with_nothing_between_sends_one_calculation() -> None:
    led = Ledger()
    led.register("o1", ORDER)
    led.post_event(scan("s1", packed=1))
    assert len(led.finish("o1").queued) == 1
    assert led.finish("o1").status == 200
    assert len(led.sent) == 1
    led.post_event(scan("s2", packed=1))
    assert len(led.finish("o1").queued) == 1  # the totals changed: sent again
    assert len(led.sent) == 2


def test_no_null_in_a_calculation_of_a_weighed_entry_without_a_measure() -> None:
    led = Ledger()
    led.register(
        "o1",
        {"entries": [{"entryId": "w", "productId": "p1", "totalCount": 2, "orderUnit": "KGM"}]},
    )
    led.post_event(scan("s1", unit="KGM", packed=2))
    ((_, body),) = led.finish("o1").queued
    assert body == {"entries": [{"entryId": "w", "deliveredAmount": 2, "unit": "KGM"}]}
    assert None not in body["entries"][0].values()


def test_idempotency_retries_conflicts_unknown_and_cancelled_orders() -> None:
    led = Ledger()
    first = scan("s1", order="o9", packed=2)
    assert led.post_event(first).status == 200
    assert led.post_event(first).status == 200  # retry: nothing new
    assert led.post_event({**first, "packedAmount": 3}).status == 409
    assert len(led.recorded) == 1
    assert led.order_detail("o9") is None  # unknown order: kept, not shown
    led.register(
        "o9",
        {"entries": [{"entryId": "e", "productId": "p1", "totalCount": 2, "orderUnit": "H87"}]},
    )
    detail = led.order_detail("o9")
    assert detail is not None and detail["entries"][0]["packedCount"] == 2  # counted now
    assert detail["packingStatus"] == PRE_PACKED
    assert led.patch_status("o9", "CANCELLED").status == 200
    assert led.post_event(scan("s2", order="o9", packed=1)).status == 409
    assert led.post_event(first).status == 200  # a retry of a recorded scan is not a write
    assert led.finish("o9").status == 409
    assert led.register("o9", {"entries": []}).status == 409
    assert led.packlist("main", "2030-01-01") == []


def test_status_after_patch_waits_for_the_next_fact_and_packed_stays() -> None:
    led = Ledger()
    led.register("o1", ORDER)
    led.post_event(scan("s1", packed=6))
    assert led.order_detail("o1")["packingStatus"] == PRE_PACKED  # type: ignore[index]
    led.patch_status("o1", IN_PROGRESS)
    assert led.order_detail("o1")["packingStatus"] == IN_PROGRESS  # type: ignore[index]
    led.post_event(scan("s2", picked=1))
    assert led.order_detail("o1")["packingStatus"] == PRE_PACKED  # type: ignore[index]
    led.patch_status("o1", PACKED)
    led.post_event(scan("s3", picked=1))
    detail = led.order_detail("o1")
    assert detail is not None and detail["packingStatus"] == PACKED
    assert detail["holdingAreaNumber"] == 1


def test_assignees_and_idempotent_commands() -> None:
    led = Ledger()
    led.register("o1", ORDER)
    a = {"id": "ann", "siteCode": "main", "firstName": "A", "lastName": "B"}
    b = {**a, "id": "bob"}
    assert led.add_assignee("o1", a, force=True).status == 200
    assert led.order_detail("o1")["packingStatus"] == IN_PROGRESS  # type: ignore[index]
    assert led.add_assignee("o1", b, force=False).status == 400
    assert led.add_assignee("o1", a, force=False).status == 200
    assert led.add_assignee("o1", b, force=True).status == 200
    assert led.order_detail("o1")["assignees"] == [b]  # type: ignore[index]
    assert led.remove_assignee("o1", "zed").status == 204
    led.finish("o1")
    assert "assignees" not in led.order_detail("o1")  # type: ignore[operator]
    assert led.add_assignee("nope", a, force=True).status == 404


def test_jobs_send_absolute_totals_and_automatic_only_what_changed() -> None:
    led = Ledger()
    led.register("o1", ORDER)
    led.post_event(scan("s1", packed=4))
    led.post_event(scan("s2", order="o2", product="q", packed=2))  # o2 never registered
    assert led.manual_job(["o1", "o1", "o3"]) == {"o1": "SUCCESS", "o3": "FAILURE"}
    assert led.sent[-1][1]["entries"][1]["deliveredAmount"] == 1
    assert led.automatic_job() == {"o2": "SUCCESS"}  # o1 was just sent unchanged
    assert led.sent[-1] == (
        "o2",
        {
            "entries": [
                {"entryId": "q", "deliveredAmount": 2, "deliveredAmountInPc": 2, "unit": "H87"}
            ]
        },
    )
    assert led.automatic_job() == {}


def test_events_feed_order_and_pieces_of_weighed_units() -> None:
    led = Ledger()
    led.register(
        "o1",
        {
            "entries": [
                {
                    "entryId": "w",
                    "productId": "p1",
                    "totalCount": 2,
                    "orderUnit": "KGM",
                    "unitPricingMeasure": {"value": 250, "unitCode": "GRM"},
                }
            ]
        },
    )
    led.post_event({**scan("s1", unit="KGM", packed=1), "timestamp": "2026-01-01T00:00:02.000Z"})
    led.post_event({**scan("s2", unit="GRM", packed=600), "timestamp": "2026-01-01T00:00:01.000Z"})
    feed = led.events()
    assert [(e["eventId"], e["packedAmountInPc"]) for e in feed] == [("s2", 2), ("s1", 4)]
    assert [e["eventId"] for e in led.events(after="2026-01-01T00:00:01.000Z")] == ["s1"]


def test_an_entry_without_order_unit_counts_pieces_and_sends_h87() -> None:
    led = Ledger()
    led.register("o1", {"entries": [{"entryId": "e1", "productId": "p1", "totalCount": 2}]})
    led.post_event(scan("s1", unit="C62", packed=1))  # another piece code: counted
    led.post_event(scan("s2", unit="KGM", packed=2))  # a weight: never pieces
    assert led.calculation("o1") == {
        "entries": [
            {"entryId": "e1", "deliveredAmount": 1, "deliveredAmountInPc": 1, "unit": "H87"}
        ]
    }
    detail = led.order_detail("o1")
    assert detail is not None
    assert [u["unit"] for u in detail["unreconciledAmounts"]] == ["KGM"]


def test_each_figure_converts_on_its_own() -> None:
    led = Ledger()
    led.register(
        "o1",
        {"entries": [{"entryId": "w", "productId": "p1", "totalCount": 3, "orderUnit": "KGM"}]},
    )
    led.post_event(scan("s1", unit="GRM", packed=1500, canceled=1000, picked=2000))
    detail = led.order_detail("o1")
    assert detail is not None
    e = detail["entries"][0]
    assert (e["pickedCount"], e["packedCount"], e["canceledCount"]) == (2, 0, 1)
    assert detail["unreconciledAmounts"] == [
        {
            "productId": "p1",
            "unit": "GRM",
            "pickedAmount": 0,
            "packedAmount": 1500,
            "canceledAmount": 0,
        }
    ]


def test_the_models_statuses_are_the_specs_enum() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    enums = [
        prop["enum"]
        for schema in spec["components"]["schemas"].values()
        for name, prop in (schema.get("properties") or {}).items()
        if name == "packingStatus" and "enum" in prop
    ]
    assert enums
    for enum in enums:
        assert [str(s) for s in Status] == enum


def test_the_unit_table_converts_as_rec_20_defines_the_units() -> None:
    # Worked out by hand from Rec. 20's definitions (1 l = 1 dm3 = 10^-3 m3, 1 t = 1000 kg).
    assert convert(1, "KGM", "GRM") == 1000
    assert convert(1, "TNE", "KGM") == 1000
    assert convert(1, "GRM", "MGM") == 1000
    assert convert(1, "LTR", "MLT") == 1000
    assert convert(1, "LTR", "CLT") == 100
    assert convert(1, "LTR", "DLT") == 10
    assert convert(1, "HLT", "LTR") == 100
    assert convert(1, "MTQ", "LTR") == 1000
    assert convert(1, "MTR", "MMT") == 1000
    assert convert(1, "DMT", "CMT") == 10
    assert convert(1, "KMT", "MTR") == 1000
    assert convert(250, "GRM", "KGM") == Fraction(1, 4)
    assert convert(3, "EA", "H87") == 3
    assert convert(1, "KGM", "LTR") is None  # mass is not volume, whatever water weighs
    assert convert(1, "H87", "KGM") is None
    assert convert(1, "XYZ", "XYZ") == 1  # the same code is the same unit, known or not
    assert convert(1, "XYZ", "KGM") is None
    assert all(is_piece(u) for u in ("H87", "C62", "PCE", "EA"))
    assert not is_piece("KGM") and not is_piece(None)


def test_an_amount_fills_entries_in_document_order_and_the_excess_stays_on_the_last() -> None:
    # "A product in several entries", by hand.
    assert _fill(5, [3, 3]) == [3, 2]
    assert _fill(7, [3, 3]) == [3, 4]
    assert _fill(2, [0, 3]) == [0, 2]
    assert _fill(4, [3, -1]) == [3, 1]  # no open capacity left on the last: it takes the rest
    assert _fill(4, [-2, 3]) == [0, 4]
    assert _fill(0, [3, 3]) == [0, 0]
    assert _fill(5, [2]) == [5]
    assert _fill(5, []) == []
