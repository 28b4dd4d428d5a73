"""Schemathesis against the live service, and the defects it found, pinned as regressions.

The suite's run is bounded (EXAMPLES cases per operation and generation mode, so it
takes some seconds); bench/fuzz.py runs the same with more. Each run prints one line
per operation (shown with `pytest -rP` or on failure): cases sent, time, status codes.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from schemathesis import GenerationMode

from devtools.harness.fuzzing import fuzz_spec, reference_spec, seed_known_ids
from devtools.harness.service import EXAMPLE_EVENT, Service, auth

EXAMPLES = 20  # per operation and mode: about 2 specs x 13 operations x 2 modes x 20 cases


def _fuzz(name: str, doc: dict[str, Any], service: Service, lenient: bool) -> None:
    reports = fuzz_spec(
        name,
        doc,
        service.url,
        auth("demo"),
        EXAMPLES,
        (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
        lenient_errors=lenient,
        seed=lambda: seed_known_ids(service.url, auth("demo")),
    )
    for report in reports:
        print(report.line())
    sent = sum(r.examples for r in reports)
    print(f"{name}: {len(reports)} operation runs, {sent} cases")
    failures = [f"[{r.mode} {r.label}] {f}" for r in reports for f in r.failures]
    assert not failures, "\n".join(failures)
    # Every operation got cases in positive mode: the run is not vacuous.
    positive = [r for r in reports if r.mode == GenerationMode.POSITIVE.value]
    assert positive and all(r.examples > 0 for r in positive)


def test_fuzzing_the_services_own_openapi_finds_no_5xx_and_no_nonconforming_response(
    service: Service,
) -> None:
    doc = service.client.get("/openapi.json").json()
    _bound_the_long_poll(doc)
    _fuzz("ours", doc, service, lenient=False)


def _bound_the_long_poll(doc: dict[str, Any]) -> None:
    """Hold the change feed's long-poll to a fraction of a second in the fuzz's copy.

    Generated cases ask for a position past the head with a wait of up to the maximum, and
    the service rightly holds each one that long: 40 cases cost about a minute of waiting
    and test nothing the change feed's own tests do not. Every other bound of the
    parameter stays as the service declares it.
    """
    params = doc["paths"]["/pick-pack/{tenant}/changes"]["get"]["parameters"]
    (wait,) = [p for p in params if p["name"] == "wait"]
    assert wait["schema"]["maximum"] > 0.2  # the service's own bound, narrowed below
    wait["schema"]["maximum"] = 0.2


def test_fuzzing_the_reference_spec_finds_no_5xx_and_no_nonconforming_response(
    service: Service,
) -> None:
    doc = reference_spec()
    assert len([op for item in doc["paths"].values() for op in item]) == 12
    _fuzz("reference", doc, service, lenient=True)


# -- regressions: cases schemathesis found ----------------------------------------------


def test_a_timestamp_before_the_year_1000_is_stored_and_shown_with_four_digits(
    service: Service,
) -> None:
    """Found by fuzzing: "0076-..." was formatted as "76-..." and PostgreSQL answered 500."""
    body = {**EXAMPLE_EVENT, "timestamp": "0076-03-10T14:50:42.860Z"}
    assert service.post_event(body).status_code == 200
    feed = service.events().json()
    assert [e["timestamp"] for e in feed] == ["0076-03-10T14:50:42.860Z"]


def test_a_timestamp_that_leaves_the_calendar_once_in_utc_is_a_400_naming_it(
    service: Service,
) -> None:
    """0001-01-01T00:00+01:00 is the last hour of year 0 in UTC: refused, not a 500."""
    for ts in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        resp = service.post_event({**EXAMPLE_EVENT, "eventId": "far", "timestamp": ts})
        assert resp.status_code == 400, resp.text
        assert resp.json()["detailInfo"].startswith("timestamp:")
        resp = service.events(timestamp=ts)
        assert resp.status_code == 400, resp.text
    assert service.events().json() == []


def test_feed_items_leave_absent_fields_out_rather_than_null(service: Service) -> None:
    """Found by fuzzing the reference spec: null is not a string/integer/boolean there."""
    body = {
        k: v
        for k, v in EXAMPLE_EVENT.items()
        if k not in ("deliveryCycle", "supplierId", "bookProduct")
    }
    assert service.post_event({**body, "unit": "KGM"}).status_code == 200
    [item] = service.events().json()
    assert None not in item.values()
    for absent in ("deliveryCycle", "supplierId", "bookProduct", "packedAmountInPc"):
        assert absent not in item
    doc = reference_spec()
    schema = {
        "$ref": "#/components/schemas/OrderEntryEventResponse",
        "components": doc["components"],
    }
    jsonschema.validate(item, schema)


def test_a_page_number_past_any_feed_is_an_empty_page_not_a_500(service: Service) -> None:
    """Found by fuzzing: pageNumber 423703571700024448 overflowed SQL's bigint OFFSET."""
    assert service.post_event(EXAMPLE_EVENT).status_code == 200
    for page in (423703571700024448, 2315894883043665021697146224640):
        resp = service.events(pageNumber=page, pageSize=276)
        assert resp.status_code == 200, resp.text
        assert resp.json() == []
    assert len(service.events(pageNumber=1).json()) == 1


def test_a_job_in_progress_leaves_finished_at_out_rather_than_null(service: Service) -> None:
    """Found by fuzzing with a known jobId: `"finishedAt": null` is not a date-time."""
    h = auth("demo")
    order = {"id": "o1", "entries": [{"entryId": "e1", "productId": "p1", "totalCount": 1}]}
    assert service.client.put("/pick-pack/demo/orders/o1", json=order, headers=h).status_code == 200
    job = service.client.post(
        "/pick-pack/demo/jobs/recalculations",
        json={"jobType": "MANUAL", "orderIds": ["o1"]},
        headers=h,
    ).json()["jobId"]
    body = service.client.get(f"/pick-pack/demo/jobs/recalculations/{job}", headers=h).json()
    assert body["jobStatus"] == "IN_PROGRESS" and "finishedAt" not in body
    assert None not in body.values()
    doc = reference_spec()
    schema = {"$ref": "#/components/schemas/RecalculationJob", "components": doc["components"]}
    jsonschema.validate(body, schema)
