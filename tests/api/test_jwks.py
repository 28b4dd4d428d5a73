"""Tokens signed by an identity provider: RS256 and ES256 checked against a JWKS URL."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth import MANAGE, VIEW
from devtools.harness.service import EXAMPLE_EVENT
from tests.helpers.jwks import JwksServer


def sign(key: Any, kid: str, alg: str, tenant: str = "demo") -> str:
    claims = {
        "sub": "idp-user",
        "tenant": tenant,
        "scope": f"{VIEW} {MANAGE}",
        "exp": int(time.time()) + 600,
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def post(url: str, token: str, event_id: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "saas-token": "s"}
    return httpx.post(
        f"{url}/pick-pack/demo/events", json={**EXAMPLE_EVENT, "eventId": event_id}, headers=headers
    )


def test_rs256_and_es256_tokens_from_the_key_set_are_accepted(
    jwks_service: tuple[str, JwksServer],
) -> None:
    url, jwks = jwks_service
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks.publish("rsa-1", rsa_key, "RS256")
    jwks.publish("ec-1", ec_key, "ES256")
    assert post(url, sign(rsa_key, "rsa-1", "RS256"), "r1").status_code == 200
    assert post(url, sign(ec_key, "ec-1", "ES256"), "e1").status_code == 200


def test_keys_are_cached_and_refetched_for_an_unknown_kid(
    jwks_service: tuple[str, JwksServer],
) -> None:
    url, jwks = jwks_service
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("k1", first, "RS256")
    assert post(url, sign(first, "k1", "RS256"), "a").status_code == 200
    assert post(url, sign(first, "k1", "RS256"), "b").status_code == 200
    fetched = jwks.fetches
    assert fetched >= 1
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("k2", rotated, "RS256")  # the provider rotates its keys
    time.sleep(1.1)  # refetches for unknown kids are spaced by at least a second
    assert post(url, sign(rotated, "k2", "RS256"), "c").status_code == 200
    assert jwks.fetches > fetched, "an unknown kid makes the service fetch the set again"


def test_a_token_signed_by_a_key_not_in_the_set_is_401(
    jwks_service: tuple[str, JwksServer],
) -> None:
    url, jwks = jwks_service
    published = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("k1", published, "RS256")
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert post(url, sign(impostor, "k1", "RS256"), "x").status_code == 401
    assert post(url, sign(impostor, "nope", "RS256"), "y").status_code == 401
