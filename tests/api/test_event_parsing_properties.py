"""Property: any JSON as a packing-event body is either a valid PackingEvent or a 400
naming the field; never an exception, never a 500.

The pure part runs the same code the route runs (pydantic's strict model, then
OrderEntryEventCreate.to_event, then the content hash the idempotency check needs) on
many generated bodies; the HTTP part sends fewer of them to the live service.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from pydantic import ValidationError

from api.errors import describe_validation_error
from api.schemas import OrderEntryEventCreate
from devtools.harness.service import EXAMPLE_EVENT, Service
from ledger.domain.inputs import ID_MAX_LENGTH, MAX_AMOUNT, identifier_problem
from ledger.domain.packing import PackingEvent, format_event_time, parse_event_time

FIELDS = list(EXAMPLE_EVENT)
IDS = ("eventId", "orderNumber", "productId", "unit", "site", "deliveryCycle", "supplierId")
AMOUNTS = ("pickedAmount", "packedAmount", "canceledAmount")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Values a field is likely to meet: good ones, near misses, and hostile ones.
near_values = st.sampled_from(
    [
        "",
        "123",
        "x" * (ID_MAX_LENGTH + 1),
        "a\x00b",
        "'; DROP TABLE stored_events; --",
        "2020-09-14T13:35:18.333Z",
        "2020-09-14T13:35:18",
        "0076-03-10T14:50:42.860+02:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59.999-01:00",
        0,
        -1,
        MAX_AMOUNT,
        MAX_AMOUNT + 1,
        2**64,
        1.0,
        True,
        "1",
    ]
)


@st.composite
def event_bodies(draw: st.DrawFn) -> Any:
    """Mostly the example event with up to four fields dropped or replaced (by a near miss
    or any JSON), sometimes an unknown field more; one in ten is any JSON at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    body: dict[str, Any] = dict(EXAMPLE_EVENT)
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=4)):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            del body[name]
        elif choice == 1:
            body[name] = draw(near_values)
        else:
            body[name] = draw(json_values)
    if draw(st.booleans()):
        body[draw(st.text(max_size=8))] = draw(json_values)  # unknown fields are ignored
    return body


def _judge(body: Any) -> PackingEvent | list[str]:
    """What the route does with `body`: the event, or the 400's per-field messages."""
    try:
        model = OrderEntryEventCreate.model_validate(body)
    except ValidationError as exc:
        return [describe_validation_error(e) for e in exc.errors()]
    return model.to_event("demo")


@settings(max_examples=300, deadline=None)
@given(event_bodies())
def test_any_json_body_is_a_valid_packing_event_or_errors_naming_fields(body: Any) -> None:
    verdict = _judge(body)
    # What was tried: `pytest --hypothesis-show-statistics` prints these tallies.
    tally("accepted" if not isinstance(verdict, list) else f"refused ({len(verdict)} fields)")
    if isinstance(verdict, list):
        assert verdict
        for message in verdict:
            name, sep, why = message.partition(": ")
            assert sep and why, message
            assert name in FIELDS or name == "body", message
        return
    event = verdict
    event.content_hash()  # what idempotency needs: serialisable, no exception
    for name in IDS:
        value = getattr(event, _attr(name))
        assert value is None or identifier_problem(value) is None, (name, value)
    for name in AMOUNTS:
        assert 0 <= getattr(event, name.removesuffix("Amount")) <= MAX_AMOUNT
    # the stored time is UTC milliseconds and reads back as itself
    assert format_event_time(parse_event_time(event.event_time)) == event.event_time
    assert event.event_time.endswith("Z") and len(event.event_time) == 24


def _attr(name: str) -> str:
    return {
        "eventId": "event_id",
        "orderNumber": "order_id",
        "productId": "product_id",
        "unit": "unit",
        "site": "site",
        "deliveryCycle": "delivery_cycle",
        "supplierId": "supplier_id",
    }[name]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=event_bodies())
def test_any_json_body_over_http_is_200_409_or_a_400_naming_a_field(
    service: Service, body: Any
) -> None:
    resp = service.post_event(body)
    tally(f"HTTP {resp.status_code}")
    assert resp.status_code in (200, 400, 409), resp.text
    verdict = _judge(body)
    if resp.status_code == 400:
        detail = resp.json()["detailInfo"]
        assert detail.split(": ")[0] in [*FIELDS, "body"], detail
        assert isinstance(verdict, list)
    else:
        assert isinstance(verdict, PackingEvent)
