"""POST /oauth/token (Emporix's client-credentials endpoint), clients, and identity checks.

Real HTTP against the service on uvicorn, real PostgreSQL. Clients are registered with
the function `pickpack clients add` runs (cli.clients.add).
"""

from __future__ import annotations

import base64
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth import MANAGE, VIEW, mint_token
from cli import clients as clients_cli
from devtools.harness.service import EXAMPLE_EVENT, SECRET, Service, start_service
from ledger.adapters import client_store
from ledger.config import ConfigError, Settings
from ledger.services.tokens import ADDRESS_FAILURES, CLIENT_FAILURES

BOTH = f"{VIEW} {MANAGE}"
FAULT = {
    "fault": {
        "faultstring": "Invalid access token",
        "detail": {"errorcode": "oauth.v2.InvalidAccessToken"},
    }
}


@pytest.fixture
def make_service(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """Start the service with extra settings; stopped at the end of the test."""
    started: list[tuple[Any, Any, Any]] = []

    def make(env: dict[str, str] | None = None) -> Service:
        server, thread, runtime, url = start_service(db_url, tmp_path, env, run_workers=False)
        client = httpx.Client(base_url=url, timeout=30)
        started.append((server, thread, runtime))
        return Service(url, runtime, client)

    yield make
    for server, thread, runtime in started:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()


def add_client(db_url: str, tenant: str = "acme", scopes: str = BOTH) -> tuple[str, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return clients_cli.add(conn, tenant, scopes.split(), name="scanner 1")


def get_token(
    svc: Service, client_id: str, secret: str, scope: str, as_json: bool = False, **kw: Any
) -> httpx.Response:
    body = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": scope,
    }
    if as_json:
        return svc.client.post("/oauth/token", json=body, **kw)
    return svc.client.post("/oauth/token", data=body, **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "saas-token": "s"}


def scan(svc: Service, token: str, event_id: str, tenant: str = "acme") -> httpx.Response:
    return svc.client.post(
        f"/pick-pack/{tenant}/events",
        json={**EXAMPLE_EVENT, "eventId": event_id},
        headers=bearer(token),
    )


def assert_oauth_error(resp: httpx.Response, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error, body
    assert resp.headers["cache-control"] == "no-store"


def test_a_registered_client_gets_a_token_with_a_form_or_json_body_and_drives_the_api(
    make_service: Any, db_url: str
) -> None:
    svc = make_service()
    client_id, secret = add_client(db_url)
    for as_json, event_id in ((False, "form-1"), (True, "json-1")):
        resp = get_token(svc, client_id, secret, f"tenant=acme {BOTH}", as_json=as_json)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {
            "access_token",
            "token_type",
            "expires_in",
            "session_idle_time",
            "refresh_token",
            "refresh_token_expires_in",
            "scope",
        }
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 14399
        assert body["refresh_token"] == "" and body["refresh_token_expires_in"] == 0
        assert body["scope"] == f"tenant=acme {BOTH}"
        assert resp.headers["cache-control"] == "no-store"
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == client_id and claims["tenant"] == "acme"
        assert claims["scope"] == BOTH
        assert {"iss", "aud", "exp"} <= set(claims)
        assert claims["exp"] - claims["iat"] == 14399
        token = body["access_token"]
        assert scan(svc, token, event_id).status_code == 200
        feed = svc.client.get("/pick-pack/acme/events", headers=bearer(token)).json()
        mine = [e for e in feed if e["eventId"] == event_id]
        assert mine and mine[0]["user"] == client_id  # the client is the events' user
    # HTTP Basic client authentication (RFC 6749 2.3.1) works too.
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    resp = svc.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "tenant=acme"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == f"tenant=acme {BOTH}"  # no scope asked: all it holds


def test_each_refusal_gets_the_oauth_error_body(make_service: Any, db_url: str) -> None:
    svc = make_service()
    client_id, secret = add_client(db_url)
    view_id, view_secret = add_client(db_url, scopes=VIEW)
    ok = f"tenant=acme {BOTH}"
    assert_oauth_error(get_token(svc, client_id, "wrong", ok), 401, "invalid_client")
    assert_oauth_error(get_token(svc, "pp_nobody", secret, ok), 401, "invalid_client")
    assert_oauth_error(
        get_token(svc, client_id, secret, f"tenant=other {BOTH}"), 400, "invalid_scope"
    )
    assert_oauth_error(
        get_token(svc, client_id, secret, f"tenant=acme {VIEW} order.order_read"),
        400,
        "invalid_scope",
    )
    assert_oauth_error(get_token(svc, client_id, secret, BOTH), 400, "invalid_scope")
    assert_oauth_error(get_token(svc, client_id, secret, BOTH, as_json=True), 400, "invalid_scope")
    assert_oauth_error(
        get_token(svc, view_id, view_secret, f"tenant=acme {MANAGE}"), 400, "invalid_scope"
    )
    resp = svc.client.post("/oauth/token", data={"grant_type": "password"})
    assert_oauth_error(resp, 400, "unsupported_grant_type")
    resp = svc.client.post("/oauth/token", data={"client_id": client_id})
    assert_oauth_error(resp, 400, "invalid_request")
    resp = svc.client.post("/oauth/token", json=["grant_type"])
    assert_oauth_error(resp, 400, "invalid_request")
    resp = svc.client.post("/oauth/token", content=b"grant_type=client_credentials")
    assert_oauth_error(resp, 400, "invalid_request")  # no Content-Type
    # Scopes are intersected: a view-only client asking for both gets view only.
    resp = get_token(svc, view_id, view_secret, f"tenant=acme {BOTH}")
    assert resp.status_code == 200 and resp.json()["scope"] == f"tenant=acme {VIEW}"
    assert scan(svc, resp.json()["access_token"], "v1").status_code == 403
    # A revoked client gets no token, with the same answer as a wrong secret.
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert client_store.revoke(conn, client_id)
    assert_oauth_error(get_token(svc, client_id, secret, ok), 401, "invalid_client")


def test_a_burst_of_wrong_secrets_is_throttled_without_a_slow_hash_each(
    make_service: Any, db_url: str
) -> None:
    svc = make_service()
    service = svc.runtime.token_service
    assert service is not None
    victim, victim_secret = add_client(db_url)
    other, other_secret = add_client(db_url)
    scope = f"tenant=acme {BOTH}"
    statuses = []
    timings: dict[int, list[float]] = {401: [], 429: []}
    for _ in range(CLIENT_FAILURES + 30):
        started = time.perf_counter()
        resp = get_token(svc, victim, "guess", scope)
        timings[resp.status_code].append(time.perf_counter() - started)
        statuses.append(resp.status_code)
    assert statuses == [401] * CLIENT_FAILURES + [429] * 30
    refused = get_token(svc, victim, "guess", scope)
    assert_oauth_error(refused, 429, "invalid_client")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # One slow hash per counted failure, none for the throttled ones.
    assert service.secret_checks == CLIENT_FAILURES
    print(
        f"wrong secret (hash): median {statistics.median(timings[401]) * 1000:.1f} ms; "
        f"throttled: median {statistics.median(timings[429]) * 1000:.1f} ms"
    )
    assert statistics.median(timings[429]) < statistics.median(timings[401])
    # From the guesser's address the pair is throttled, even with the right secret,
    # while another client from the same address still gets its token...
    assert get_token(svc, victim, victim_secret, scope).status_code == 429
    assert get_token(svc, other, other_secret, scope).status_code == 200
    # ...and the victim, from its own address, is not locked out by someone else's
    # wrong secrets (client ids are not secret: GET /events shows them as `user`).
    victim_body = {"grant_type": "client_credentials", "client_id": victim, "scope": scope}
    victim_body["client_secret"] = victim_secret
    with httpx.Client(
        base_url=svc.url, transport=httpx.HTTPTransport(local_address="127.0.0.4"), timeout=30
    ) as own:
        assert own.post("/oauth/token", data=victim_body).status_code == 200

    # Per address: a spray over many client ids from one address stops at its bound;
    # the right secret from another address still works.
    def from_address(address: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=svc.url, transport=transport, timeout=30)

    with from_address("127.0.0.2") as sprayer, from_address("127.0.0.3") as honest:
        sprayed = [
            sprayer.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": f"pp_guess{i}",
                    "client_secret": "x",
                    "scope": scope,
                },
            ).status_code
            for i in range(ADDRESS_FAILURES + 5)
        ]
        assert sprayed == [401] * ADDRESS_FAILURES + [429] * 5
        ok = {"grant_type": "client_credentials", "client_id": other, "scope": scope}
        ok["client_secret"] = other_secret
        assert sprayer.post("/oauth/token", data=ok).status_code == 429
        assert honest.post("/oauth/token", data=ok).status_code == 200
    assert service.secret_checks == CLIENT_FAILURES + ADDRESS_FAILURES + 3


def test_a_revoked_clients_tokens_stop_working_within_the_cache_lifetime(
    make_service: Any, db_url: str
) -> None:
    lifetime = 1.0
    svc = make_service({"PICKPACK_REVOCATION_CACHE_SECONDS": str(lifetime)})
    client_id, secret = add_client(db_url, tenant="demo")
    token = get_token(svc, client_id, secret, f"tenant=demo {BOTH}").json()["access_token"]
    dev_token = mint_token(SECRET, "demo", [VIEW, MANAGE], subject=client_id)
    assert scan(svc, token, "r1", tenant="demo").status_code == 200
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert client_store.revoke(conn, client_id)
    revoked_at = time.monotonic()
    while True:
        resp = svc.client.get("/pick-pack/demo/events", headers=bearer(token))
        if resp.status_code == 401:
            break
        assert resp.status_code == 200
        assert time.monotonic() - revoked_at < lifetime + 0.5, "still accepted"
        time.sleep(0.05)
    assert resp.json() == FAULT
    assert scan(svc, token, "r2", tenant="demo").status_code == 401  # the fast path too
    # A token not issued to a client (the dev token, an identity provider's) is unaffected.
    assert scan(svc, dev_token, "r3", tenant="demo").status_code == 200


def test_iss_and_aud_are_checked_when_configured(make_service: Any, db_url: str) -> None:
    svc = make_service(
        {"PICKPACK_JWT_ISSUER": "https://id.example", "PICKPACK_JWT_AUDIENCE": "pickpack"}
    )

    def token(**claims: Any) -> str:
        now = int(time.time())
        base = {"sub": "u", "tenant": "demo", "scope": BOTH, "exp": now + 600}
        return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")

    def events(tok: str) -> httpx.Response:
        return svc.client.get("/pick-pack/demo/events", headers=bearer(tok))

    assert events(token(iss="https://id.example", aud="pickpack")).status_code == 200
    assert events(token(iss="https://id.example", aud=["other", "pickpack"])).status_code == 200
    for wrong in (
        token(iss="https://evil.example", aud="pickpack"),
        token(iss="https://id.example", aud="other"),
        token(aud="pickpack"),  # no iss
        token(iss="https://id.example"),  # no aud
    ):
        resp = events(wrong)
        assert resp.status_code == 401 and resp.json() == FAULT
        assert scan(svc, wrong, "w", tenant="demo").status_code == 401
    # The service's own tokens carry the configured values.
    client_id, secret = add_client(db_url, tenant="demo")
    own = get_token(svc, client_id, secret, f"tenant=demo {BOTH}").json()["access_token"]
    claims = jwt.decode(own, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("https://id.example", "pickpack")
    assert events(own).status_code == 200


def test_iss_and_aud_are_not_checked_when_not_configured(service: Service) -> None:
    now = int(time.time())
    claims = {"sub": "u", "tenant": "demo", "scope": BOTH, "exp": now + 600}
    for extra in ({"iss": "https://anyone", "aud": "anything"}, {}):
        tok = jwt.encode({**claims, **extra}, SECRET, algorithm="HS256")
        resp = service.client.get("/pick-pack/demo/events", headers=bearer(tok))
        assert resp.status_code == 200, resp.text


def write_rsa_key(path: Path) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return key


def test_rs256_tokens_of_the_services_own_key_verify_with_its_jwks(
    make_service: Any,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = tmp_path / "signing.pem"
    write_rsa_key(key_file)
    env = {"PICKPACK_JWT_SECRET": "", "PICKPACK_JWT_PRIVATE_KEY_FILE": str(key_file)}
    svc = make_service(env)
    client_id, secret = add_client(db_url)
    token = get_token(svc, client_id, secret, f"tenant=acme {BOTH}").json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    keys = svc.client.get("/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in keys] == [header["kid"]]
    public = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="pickpack-ledger")
    assert claims["sub"] == client_id
    assert scan(svc, token, "rs-1").status_code == 200
    # A token signed by another key with the same kid is refused.
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({**claims, "exp": int(time.time()) + 60}, impostor, "RS256", headers=header)
    assert scan(svc, forged, "rs-2").status_code == 401
    # `pickpack token` signs with the same key, and the service accepts it.
    from cli.main import main

    for name, value in {**env, "PICKPACK_DATABASE_URL": db_url}.items():
        monkeypatch.setenv(name, value)
    assert main(["token", "--tenant", "acme"]) == 0
    dev = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(dev)["alg"] == "RS256"
    assert scan(svc, dev, "rs-3").status_code == 200


def test_a_shared_secret_is_never_published(service: Service) -> None:
    resp = service.client.get("/.well-known/jwks.json")
    assert resp.status_code == 200 and resp.json() == {"keys": []}


def test_secrets_are_read_from_files(make_service: Any, tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text("file-secret-0123456789-0123456789-0123456789\n")
    order_token = tmp_path / "order-token"
    order_token.write_text("order-service-token\n")
    settings = Settings.from_env(
        {
            "PICKPACK_JWT_SECRET_FILE": str(secret_file),
            "PICKPACK_ORDER_SERVICE_TOKEN_FILE": str(order_token),
        }
    )
    assert settings.jwt_secret == "file-secret-0123456789-0123456789-0123456789"
    assert settings.order_service_token == "order-service-token"
    svc = make_service({"PICKPACK_JWT_SECRET": "", "PICKPACK_JWT_SECRET_FILE": str(secret_file)})
    good = mint_token("file-secret-0123456789-0123456789-0123456789", "demo", [VIEW])
    assert svc.client.get("/pick-pack/demo/events", headers=bearer(good)).status_code == 200
    env_secret = mint_token(SECRET, "demo", [VIEW])
    assert svc.client.get("/pick-pack/demo/events", headers=bearer(env_secret)).status_code == 401


@pytest.mark.parametrize("name", ["PICKPACK_JWT_SECRET", "PICKPACK_ORDER_SERVICE_TOKEN"])
def test_a_secret_and_its_file_both_set_is_a_configuration_error_naming_both(
    name: str, tmp_path: Path
) -> None:
    path = tmp_path / "s"
    path.write_text("from-file")
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: "from-env", f"{name}_FILE": str(path)})
    message = str(refused.value)
    assert name in message and f"{name}_FILE" in message
    assert "from-env" not in message and "from-file" not in message
    with pytest.raises(ConfigError, match=f"{name}_FILE: cannot read"):
        Settings.from_env({f"{name}_FILE": str(tmp_path / "missing")})


def test_the_clients_commands_add_list_and_revoke(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    monkeypatch.setenv("PICKPACK_DATABASE_URL", db_url)
    args = ["clients", "add", "--tenant", "acme", "--scope", VIEW, MANAGE, "--name", "dock 3"]
    assert main(args) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    client_id, secret = lines["client_id"], lines["client_secret"]
    with psycopg.connect(db_url) as conn:
        stored = client_store.get(conn, client_id)
    assert stored is not None and secret not in stored.secret_hash
    assert stored.scopes == (VIEW, MANAGE) and stored.name == "dock 3"
    assert main(["clients", "list"]) == 0
    listed = capsys.readouterr().out
    assert client_id in listed and "dock 3" in listed and secret not in listed
    assert main(["clients", "revoke", client_id]) == 0
    assert main(["clients", "revoke", "pp_nobody"]) == 1
    assert main(["clients", "list", "--tenant", "acme"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if client_id in line)
    assert not row.endswith("\t-")  # a revocation time
    # an unknown scope is a usage error: one sentence and exit code 2 (cli/errors.py)
    assert main(["clients", "add", "--tenant", "acme", "--scope", "admin"]) == 2
    assert "invalid choice: 'admin'" in capsys.readouterr().err


def test_the_openapi_document_describes_the_token_endpoint(service: Service) -> None:
    import yaml

    contract = yaml.safe_load(
        (Path(__file__).parent.parent / "spec" / "emporix-oauth-api.yml").read_text()
    )
    theirs = contract["paths"]["/oauth/token"]["post"]
    ours = service.client.get("/openapi.json").json()
    op = ours["paths"]["/oauth/token"]["post"]
    assert op["operationId"] == theirs["operationId"]
    assert set(op["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    fields = set(contract["components"]["schemas"]["AccessTokenRequest"]["properties"])
    for content in op["requestBody"]["content"].values():
        assert set(content["schema"]["properties"]) == fields
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer = ours["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(answer["properties"]) == set(
        contract["components"]["schemas"]["AccessToken"]["properties"]
    )
    assert {"400", "401", "429"} <= set(op["responses"])
    assert "/.well-known/jwks.json" in ours["paths"]


def test_an_identity_providers_tokens_and_the_own_rs256_tokens_are_checked_side_by_side(
    make_service: Any,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.helpers.jwks import JwksServer

    idp = JwksServer()
    try:
        idp_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        idp.publish("idp-1", idp_key, "RS256")
        key_file = tmp_path / "signing.pem"
        write_rsa_key(key_file)
        env = {
            "PICKPACK_JWT_SECRET": "",
            "PICKPACK_JWKS_URL": idp.url,
            "PICKPACK_JWT_PRIVATE_KEY_FILE": str(key_file),
            "PICKPACK_JWT_ISSUER": "pickpack-ledger, https://idp.example",
            "PICKPACK_JWT_AUDIENCE": "pickpack",
        }
        svc = make_service(env)

        def idp_token(**claims: Any) -> str:
            base = {"sub": "idp-user", "tenant": "acme", "scope": BOTH}
            base["exp"] = int(time.time()) + 600
            return jwt.encode({**base, **claims}, idp_key, "RS256", headers={"kid": "idp-1"})

        good = idp_token(iss="https://idp.example", aud="pickpack")
        assert scan(svc, good, "idp-1").status_code == 200
        for wrong in (
            idp_token(iss="https://idp.example", aud="payroll"),
            idp_token(iss="https://other.example", aud="pickpack"),
        ):
            assert scan(svc, wrong, "idp-x").status_code == 401
        client_id, secret = add_client(db_url)
        own = get_token(svc, client_id, secret, f"tenant=acme {BOTH}").json()["access_token"]
        claims = jwt.decode(own, options={"verify_signature": False})
        assert (claims["iss"], claims["aud"]) == ("pickpack-ledger", "pickpack")
        assert scan(svc, own, "own-1").status_code == 200
        # `pickpack token` carries the configured iss and aud, so it passes the checks.
        for name, value in {**env, "PICKPACK_DATABASE_URL": db_url}.items():
            monkeypatch.setenv(name, value)
        assert scan(svc, main_token(capsys), "dev-1").status_code == 200
    finally:
        idp.server.shutdown()


def main_token(capsys: pytest.CaptureFixture[str]) -> str:
    from cli.main import main

    assert main(["token", "--tenant", "acme"]) == 0
    return capsys.readouterr().out.strip()


def test_trusting_only_an_identity_provider_the_service_issues_no_tokens(
    make_service: Any, db_url: str, tmp_path: Path
) -> None:
    from tests.helpers.jwks import JwksServer

    idp = JwksServer()
    try:
        svc = make_service({"PICKPACK_JWT_SECRET": "", "PICKPACK_JWKS_URL": idp.url})
        client_id, secret = add_client(db_url)
        resp = get_token(svc, client_id, secret, f"tenant=acme {BOTH}")
        assert_oauth_error(resp, 400, "unauthorized_client")
        assert svc.client.get("/.well-known/jwks.json").json() == {"keys": []}
        assert not (tmp_path / "data" / "jwt-secret").exists()  # no dev secret made
    finally:
        idp.server.shutdown()


def test_a_key_file_that_is_not_an_rsa_private_key_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    from ledger.services.tokens import Signer

    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    for path in (bad, tmp_path / "missing.pem"):
        settings = Settings.from_env({"PICKPACK_JWT_PRIVATE_KEY_FILE": str(path)})
        with pytest.raises(ConfigError, match="PICKPACK_JWT_PRIVATE_KEY_FILE"):
            Signer.from_settings(settings)
