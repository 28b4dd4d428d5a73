"""POST and GET /pick-pack/{tenant}/events, through HTTP, on real PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from api.auth import MANAGE, VIEW
from devtools.harness.service import EXAMPLE_EVENT, Service, auth, token


def event(**overrides: Any) -> dict[str, Any]:
    body = dict(EXAMPLE_EVENT)
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def recorded_count(service: Service) -> int:
    with service.runtime.store.datastore.get_connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM stored_events").fetchone()
        assert row is not None
        return int(row["n"])


def test_the_spec_example_is_accepted_and_read_back(service: Service) -> None:
    response = service.post_event(EXAMPLE_EVENT)
    assert response.status_code == 200
    assert response.json() == {"message": "Success", "code": 200}

    feed = service.events()
    assert feed.status_code == 200
    assert feed.json() == [
        {
            "eventId": "123",
            "productId": "123",
            "deliveryCycle": "2023-10-13-11-test",
            "orderNumber": "123",
            "timestamp": "2020-09-14T13:35:18.333Z",
            "pickedAmount": 1,
            "packedAmount": 1,
            "canceledAmount": 0,
            "packedAmountInPc": 1,
            "supplierId": "123",
            "user": "user-1",
            "site": "main",
            "unit": "H87",
            "bookProduct": True,
        }
    ]


def test_identical_replays_record_one_event(service: Service) -> None:
    for _ in range(5):
        assert service.post_event(EXAMPLE_EVENT).status_code == 200
    assert recorded_count(service) == 1
    assert len(service.events().json()) == 1


def test_same_event_id_with_other_content_is_a_conflict(service: Service) -> None:
    assert service.post_event(EXAMPLE_EVENT).status_code == 200
    response = service.post_event(event(packedAmount=2))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == 409 and body["message"] == "Conflict"
    assert "eventId" in body["detailInfo"]
    assert recorded_count(service) == 1
    assert service.events().json()[0]["packedAmount"] == 1


def test_twenty_concurrent_identical_posts_record_exactly_one(service: Service) -> None:
    def post(_: int) -> int:
        with httpx.Client(base_url=service.url, timeout=30) as c:
            return c.post(
                "/pick-pack/demo/events", json=event(eventId="race"), headers=auth()
            ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(post, range(20)))
    assert codes == [200] * 20
    assert recorded_count(service) == 1


def test_the_same_event_id_in_another_tenant_is_another_event(service: Service) -> None:
    assert service.post_event(EXAMPLE_EVENT, tenant="demo").status_code == 200
    assert service.post_event(EXAMPLE_EVENT, tenant="other").status_code == 200
    assert recorded_count(service) == 2


@pytest.mark.parametrize(
    "field", ["eventId", "orderNumber", "productId", "unit", "timestamp", "site"]
)
def test_each_missing_required_field_is_named(service: Service, field: str) -> None:
    body = dict(EXAMPLE_EVENT)
    del body[field]
    response = service.post_event(body)
    assert response.status_code == 400
    assert response.json()["code"] == 400
    assert response.json()["detailInfo"].startswith(field)
    assert recorded_count(service) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("packedAmount", -1),
        ("pickedAmount", 1.5),
        ("canceledAmount", "2"),
        ("eventId", 123),
        ("bookProduct", "yes"),
        ("timestamp", "2020-09-14 13:35"),
        ("timestamp", "2020-09-14T13:35:18"),
        ("timestamp", "yesterday"),
    ],
)
def test_bad_values_are_refused_naming_the_field(service: Service, field: str, value: Any) -> None:
    response = service.post_event(event(**{field: value}))
    assert response.status_code == 400, response.text
    assert response.json()["detailInfo"].startswith(field)
    assert recorded_count(service) == 0


def test_timestamps_with_offsets_are_stored_in_utc_milliseconds(service: Service) -> None:
    assert service.post_event(event(timestamp="2020-09-14T15:35:18.3339+02:00")).status_code == 200
    assert service.events().json()[0]["timestamp"] == "2020-09-14T13:35:18.333Z"


def test_unknown_fields_are_ignored(service: Service) -> None:
    assert service.post_event(event(scannerModel="X9")).status_code == 200
    assert recorded_count(service) == 1


def test_a_body_that_is_not_json_is_refused(service: Service) -> None:
    response = service.client.post(
        "/pick-pack/demo/events",
        content=b"{not json",
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "body" in response.json()["detailInfo"]
    assert recorded_count(service) == 0


def test_a_body_that_is_not_utf8_is_refused_naming_the_body(service: Service) -> None:
    response = service.client.post(
        "/pick-pack/demo/events",
        content=b'{"eventId": "\xff"}',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detailInfo"].startswith("body: ")
    assert recorded_count(service) == 0


def test_a_token_whose_subject_holds_a_control_character_is_refused_with_401(
    service: Service,
) -> None:
    """`sub` becomes each event's `user`: a NUL there could not be stored (it was a 500)."""
    response = service.post_event(EXAMPLE_EVENT, sub="scanner\x00one")
    assert response.status_code == 401
    assert recorded_count(service) == 0


def test_a_bad_tenant_is_refused(service: Service) -> None:
    response = service.client.post(
        "/pick-pack/De-mo/events", json=EXAMPLE_EVENT, headers=auth("De-mo")
    )
    assert response.status_code == 400
    assert response.json()["detailInfo"].startswith("tenant")
    assert recorded_count(service) == 0


def test_the_saas_token_header_is_required(service: Service) -> None:
    headers = {"Authorization": f"Bearer {token()}"}
    response = service.client.post("/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
    assert response.status_code == 400
    assert "saas-token" in response.json()["detailInfo"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        f"Bearer {token(secret='another-secret-another-secret-another-secret')}",
    ],
)
def test_missing_or_bad_tokens_are_401(service: Service, authorization: str | None) -> None:
    headers = {"saas-token": "s"}
    if authorization:
        headers["Authorization"] = authorization
    response = service.client.post("/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "fault": {
            "faultstring": "Invalid access token",
            "detail": {"errorcode": "oauth.v2.InvalidAccessToken"},
        }
    }
    assert recorded_count(service) == 0


def test_an_expired_token_is_401(service: Service) -> None:
    headers = {"Authorization": f"Bearer {token(ttl=-10)}", "saas-token": "s"}
    response = service.client.post("/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
    assert response.status_code == 401
    assert response.json()["fault"]["faultstring"] == "Access Token expired"


def test_missing_scope_is_403(service: Service) -> None:
    response = service.post_event(EXAMPLE_EVENT, scopes=[VIEW])
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == 403 and body["status"] == "Forbidden"
    assert MANAGE in body["details"][0]
    reading = service.client.get("/pick-pack/demo/events", headers=auth(scopes=[MANAGE]))
    assert reading.status_code == 403
    assert recorded_count(service) == 0


def test_another_tenants_token_is_403(service: Service) -> None:
    headers = {"Authorization": f"Bearer {token('other')}", "saas-token": "s"}
    response = service.client.post("/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
    assert response.status_code == 403
    assert recorded_count(service) == 0


def test_paging_returns_every_event_once_in_timestamp_then_recording_order(
    service: Service,
) -> None:
    # 45 events; timestamps repeat (15 distinct) and arrive out of order.
    posted = []
    for i in range(45):
        second = (i * 7) % 15
        ts = f"2024-01-01T10:00:{second:02d}.000Z"
        assert service.post_event(event(eventId=f"e{i}", timestamp=ts)).status_code == 200
        posted.append((ts, i, f"e{i}"))
    expected = [eid for _, _, eid in sorted(posted)]

    pages = [service.events(pageSize=20, pageNumber=n).json() for n in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [20, 20, 5, 0]
    assert [e["eventId"] for p in pages for e in p] == expected


def test_timestamp_filter_is_strictly_after(service: Service) -> None:
    for i, ts in enumerate(
        ["2024-01-01T10:00:00.000Z", "2024-01-01T10:00:01.000Z", "2024-01-01T10:00:02.000Z"]
    ):
        service.post_event(event(eventId=f"t{i}", timestamp=ts))
    after = service.events(timestamp="2024-01-01T10:00:01Z").json()
    assert [e["eventId"] for e in after] == ["t2"]
    with_offset = service.events(timestamp="2024-01-01T11:00:00.500+01:00").json()
    assert [e["eventId"] for e in with_offset] == ["t1", "t2"]
    # A client that forgets to URL-encode the offset's "+" sends a space: still understood.
    unencoded = service.client.get(
        "/pick-pack/demo/events?timestamp=2024-01-01T11:00:00.500+01:00", headers=auth()
    )
    assert [e["eventId"] for e in unencoded.json()] == ["t1", "t2"]


def test_page_size_above_the_maximum_is_refused(service: Service) -> None:
    response = service.events(pageSize=20001)
    assert response.status_code == 400
    assert response.json()["detailInfo"].startswith("pageSize")
