"""Bad input from a buggy or hostile client is a 400 or 401 in the spec's body, never a
500 (docs/explanation/semantics.md, "What the service accepts")."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth import MANAGE, VIEW
from devtools.harness.service import EXAMPLE_EVENT, SECRET, Service, auth
from tests.helpers.jwks import JwksServer
from tests.helpers.pack_station import Api, order

FAULT = {
    "fault": {
        "faultstring": "Invalid access token",
        "detail": {"errorcode": "oauth.v2.InvalidAccessToken"},
    }
}
SCOPE = f"tenant=demo {VIEW}"


def assert_invalid_request(resp: httpx.Response, field: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_request", body
    assert body["error_description"].startswith(f"{field}:"), body


def test_a_nul_in_client_id_is_a_400_in_every_form(service: Service) -> None:
    form = {"grant_type": "client_credentials", "client_id": "pp_\x00x", "client_secret": "s"}
    assert_invalid_request(
        service.client.post("/oauth/token", data={**form, "scope": SCOPE}), "client_id"
    )
    assert_invalid_request(
        service.client.post("/oauth/token", json={**form, "scope": SCOPE}), "client_id"
    )
    basic = base64.b64encode(b"pp_\x00x:s").decode()
    resp = service.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": SCOPE},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert_invalid_request(resp, "client_id")
    form["client_id"], form["client_secret"] = "pp_x", "s\x00"
    assert_invalid_request(
        service.client.post("/oauth/token", json={**form, "scope": SCOPE}), "client_secret"
    )


def claims(**extra: Any) -> dict[str, Any]:
    return {
        "sub": "idp-user",
        "tenant": "demo",
        "scope": f"{VIEW} {MANAGE}",
        "exp": int(time.time()) + 600,
        **extra,
    }


def test_a_token_whose_alg_does_not_fit_its_keys_kind_is_a_401(
    jwks_service: tuple[str, JwksServer],
) -> None:
    url, jwks = jwks_service
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("rsa-1", rsa_key, "RS256")
    # Signed with some EC key, its header naming ES256 and the RSA key's kid.
    forged = jwt.encode(
        claims(), ec.generate_private_key(ec.SECP256R1()), "ES256", headers={"kid": "rsa-1"}
    )
    for path in ("/pick-pack/demo/events", "/pick-pack/demo/changes"):
        resp = httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {forged}"})
        assert resp.status_code == 401, resp.text
        assert resp.json() == FAULT


def test_a_signed_token_whose_scope_is_not_text_is_a_401(service: Service) -> None:
    for scope in (42, 1.5, {"a": 1}, [1, 2], True):  # one service for every case
        token = jwt.encode(claims(scope=scope), SECRET, "HS256")
        headers = {"Authorization": f"Bearer {token}", "saas-token": "s"}
        resp = service.client.get("/pick-pack/demo/events", headers=headers)
        assert resp.status_code == 401, (scope, resp.text)
        assert resp.json() == FAULT
        resp = service.client.post("/pick-pack/demo/events", json=EXAMPLE_EVENT, headers=headers)
        assert resp.status_code == 401, (scope, resp.text)


def correct(service: Service, correction_id: str, **body: Any) -> httpx.Response:
    return service.client.post(
        "/pick-pack/demo/orders/o1/corrections",
        json={"correctionId": correction_id, "productId": "p1", "unit": "H87", "reason": "r"}
        | body,
        headers=auth(),
    )


def test_a_corrections_reason_refuses_control_characters(service: Service) -> None:
    Api(service).register("o1", order("o1"))
    for n, reason in enumerate(["a\x00b", "red \x1b[31m alert", "line\r\nbreak", "tab\there"]):
        resp = correct(service, f"c{n}", packedAmount=1, reason=reason)
        assert resp.status_code == 400, (reason, resp.text)
        assert "reason" in resp.json()["detailInfo"]


def test_no_correction_takes_a_count_past_the_32_bit_range(service: Service) -> None:
    Api(service).register("o1", order("o1"))
    top = 2**31 - 1
    assert correct(service, "c1", canceledAmount=top).status_code == 200
    refused = correct(service, "c2", canceledAmount=1)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detailInfo"].startswith("canceledAmount:")
    assert correct(service, "c3", canceledAmount=top).status_code == 409
    # Down and up again within the range is fine.
    assert correct(service, "c4", canceledAmount=-top).status_code == 200
    assert correct(service, "c5", canceledAmount=5).status_code == 200
    doc = service.client.get("/pick-pack/demo/orders/o1", headers=auth()).json()
    assert all(0 <= e.get("canceledCount", 0) < 2**31 for e in doc["entries"]), doc


def test_a_null_amount_is_a_400_and_an_absent_one_is_0(service: Service) -> None:
    for field in ("pickedAmount", "packedAmount", "canceledAmount"):
        resp = service.post_event({**EXAMPLE_EVENT, "eventId": f"null-{field}", field: None})
        assert resp.status_code == 400, resp.text
        assert field in resp.json()["detailInfo"]
        absent = {k: v for k, v in EXAMPLE_EVENT.items() if k != field}
        resp = service.post_event({**absent, "eventId": f"absent-{field}"})
        assert resp.status_code == 200, resp.text
