"""Security over real HTTP on a real database: tokens, hostile input, body size, tenants.

Every operation of the spec (and the PUT order extension) is called without a token,
with an expired one, with another tenant's and with one lacking the scope; every path,
query and body field gets SQL-special, control-character and oversized values. Each
must be refused with the spec's status and body, and the database must be unchanged
afterwards: every table's row count and content digest is compared (stored_events, the
ledger tables, the read models, the recalculation jobs and outbox).
"""

from __future__ import annotations

import contextlib
import copy
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jsonschema
import psycopg
import pytest

from api.auth import MANAGE, VIEW
from devtools.harness.fuzzing import reference_spec
from devtools.harness.service import EXAMPLE_EVENT, Service, auth, token

DAY = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
ORDER_DOC: dict[str, Any] = {
    "id": "o1",
    "siteCode": "main",
    "entries": [{"entryId": "e1", "productId": "123", "totalCount": 2, "orderUnit": "H87"}],
    "customer": {"id": "c1", "firstName": "Ada", "lastName": "Lovelace"},
    "delivery": {
        "deliveryTimeModel": {"deliveryDate": DAY},
        "deliveryWindow": {"deliveryTimeTo": f"{DAY}T12:00:00Z"},
    },
}
ASSIGNEE = {"id": "a-1", "siteCode": "main", "firstName": "John", "lastName": "Smith"}


@dataclass(frozen=True)
class Op:
    """One operation: how to call it with valid input, and the scope it needs."""

    op_id: str
    method: str
    path: str  # with {tenant}, {orderId}, {assigneeId}, {jobId}
    scope: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    def url(self, tenant: str = "demo", **ids: str) -> str:
        values = {"orderId": "o1", "assigneeId": "a-1", "jobId": "job123", **ids}
        return self.path.format(tenant=tenant, **{k: quote(v, safe="") for k, v in values.items()})


OPS = [
    Op(
        "POST-pick-pack-finish-order", "POST", "/pick-pack/{tenant}/orders/{orderId}/finish", MANAGE
    ),
    Op(
        "GET-pick-pack-retrieve-order-cycles",
        "GET",
        "/pick-pack/{tenant}/orderCycles",
        VIEW,
        {"siteCode": "main"},
    ),
    Op(
        "GET-pick-pack-retrieve-packlist",
        "GET",
        "/pick-pack/{tenant}/orders",
        VIEW,
        {"siteCode": "main", "deliveryDate": DAY},
    ),
    Op("GET-pick-pack-retrieve-order", "GET", "/pick-pack/{tenant}/orders/{orderId}", VIEW),
    Op(
        "PATCH-pick-pack-update-order-status",
        "PATCH",
        "/pick-pack/{tenant}/orders/{orderId}",
        MANAGE,
        body={"packingStatus": "IN_PROGRESS"},
    ),
    Op(
        "POST-pick-pack-add-order-assignee",
        "POST",
        "/pick-pack/{tenant}/orders/{orderId}/assignees",
        MANAGE,
        {"force": "true"},
        ASSIGNEE,
    ),
    Op(
        "DELETE-pick-pack-remove-order-assignee",
        "DELETE",
        "/pick-pack/{tenant}/orders/{orderId}/assignees/{assigneeId}",
        MANAGE,
    ),
    Op(
        "PUT-pick-pack-update-order-packaging",
        "PUT",
        "/pick-pack/{tenant}/orders/{orderId}/packaging",
        MANAGE,
        body=[{"entryId": "e1", "packedCount": 1}],
    ),
    Op(
        "POST-pick-pack-create-packing-event",
        "POST",
        "/pick-pack/{tenant}/events",
        MANAGE,
        body={**EXAMPLE_EVENT, "eventId": "sec-1", "orderNumber": "o1"},
    ),
    Op(
        "GET-pick-pack-retrieve-packing-event",
        "GET",
        "/pick-pack/{tenant}/events",
        VIEW,
        {"timestamp": "2020-01-01T00:00:00Z", "pageNumber": 1, "pageSize": 10},
    ),
    Op(
        "POST-pick-pack-start-order-recalculations",
        "POST",
        "/pick-pack/{tenant}/jobs/recalculations",
        MANAGE,
        body={"jobType": "MANUAL", "orderIds": ["o1"]},
    ),
    Op(
        "GET-pick-pack-retrieve-order-recalculation",
        "GET",
        "/pick-pack/{tenant}/jobs/recalculations/{jobId}",
        VIEW,
    ),
    Op(
        "PUT-pick-pack-register-order",
        "PUT",
        "/pick-pack/{tenant}/orders/{orderId}",
        MANAGE,
        body=ORDER_DOC,
    ),
]


def call(
    service: Service,
    op: Op,
    headers: dict[str, str],
    tenant: str = "demo",
    ids: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    body: Any = ...,
) -> httpx.Response:
    return service.client.request(
        op.method,
        op.url(tenant, **(ids or {})),
        params=op.params if params is None else params,
        json=op.body if body is ... else body,
        headers=headers,
    )


# -- the database, before and after ------------------------------------------------------


def snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of its rows."""
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        assert "stored_events" in tables and "order_status" in tables
        state = {}
        for table in tables:
            row = conn.execute(
                f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                f'FROM "{table}" t'
            ).fetchone()
            assert row is not None
            state[table] = (int(row[0]), str(row[1]))
        return state


def settled(service: Service, db_url: str) -> dict[str, tuple[int, str]]:
    """The snapshot once background work (projections, outbox) has stopped changing it."""
    previous = snapshot(db_url)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = snapshot(db_url)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the database kept changing with no requests")


@pytest.fixture
def seeded(service: Service) -> Service:
    """Tenant demo with an order o1, an event, an assignee and packaging."""
    h = auth("demo")
    c = service.client
    assert c.put("/pick-pack/demo/orders/o1", json=ORDER_DOC, headers=h).status_code == 200
    assert service.post_event({**EXAMPLE_EVENT, "orderNumber": "o1"}).status_code == 200
    assert (
        c.post("/pick-pack/demo/orders/o1/assignees", json=ASSIGNEE, headers=h).status_code == 200
    )
    resp = c.put(
        "/pick-pack/demo/orders/o1/packaging", json=[{"entryId": "e1", "packedCount": 1}], headers=h
    )
    assert resp.status_code == 200
    return service


def test_the_matrix_covers_every_spec_operation_and_the_order_extension() -> None:
    spec_ids = {
        op["operationId"] for item in reference_spec()["paths"].values() for op in item.values()
    }
    assert len(spec_ids) == 12
    assert {op.op_id for op in OPS} == spec_ids | {"PUT-pick-pack-register-order"}


# -- tokens ------------------------------------------------------------------------------


def _spec_response_schema(name: str) -> dict[str, Any]:
    doc = reference_spec()
    schema = doc["components"]["responses"][name]["content"]["application/json"]["schema"]
    return {**schema, "components": doc["components"]}


BAD_TOKENS: dict[str, Callable[[Op], tuple[dict[str, str], int, str]]] = {
    "no token": lambda op: ({"saas-token": "saas-1"}, 401, "oauth.v2.InvalidAccessToken"),
    "malformed token": lambda op: (
        {"Authorization": "Bearer not-a-jwt", "saas-token": "saas-1"},
        401,
        "oauth.v2.InvalidAccessToken",
    ),
    "expired token": lambda op: (
        {"Authorization": f"Bearer {token('demo', ttl=-60)}", "saas-token": "saas-1"},
        401,
        "keymanagement.service.access_token_expired",
    ),
    "another tenant's token": lambda op: (auth("other"), 403, "Tenant validation failed"),
    "token without the scope": lambda op: (
        auth("demo", scopes=[VIEW if op.scope == MANAGE else MANAGE]),
        403,
        "Scope validation failed",
    ),
}


def test_every_operation_refuses_missing_expired_foreign_and_unscoped_tokens_and_writes_nothing(
    seeded: Service, db_url: str
) -> None:
    before = settled(seeded, db_url)
    tried = 0
    for op in OPS:
        # The request would succeed with a good token: the refusal is the token's doing.
        for case, make in BAD_TOKENS.items():
            headers, status, marker = make(op)
            resp = call(seeded, op, headers)
            tried += 1
            assert resp.status_code == status, (op.op_id, case, resp.text)
            body = resp.json()
            if status == 401:
                jsonschema.validate(body, _spec_response_schema("Unauthorized_401"))
                assert body["fault"]["detail"]["errorcode"] == marker, (op.op_id, case)
            else:
                jsonschema.validate(body, _spec_response_schema("Forbidden_403"))
                assert body["code"] == 403 and body["message"] == marker, (op.op_id, case)
    print(f"{tried} refused requests ({len(OPS)} operations x {len(BAD_TOKENS)} token cases)")
    assert snapshot(db_url) == before


def test_each_operation_succeeds_with_a_good_token(seeded: Service) -> None:
    """The matrix's requests are well formed: with the right token they are accepted."""
    for op in OPS:
        resp = call(seeded, op, auth("demo"))
        assert resp.status_code in (200, 204, 404), (op.op_id, resp.text)
        if op.op_id != "GET-pick-pack-retrieve-order-recalculation":  # job123 does not exist
            assert resp.status_code in (200, 204), (op.op_id, resp.text)


# -- hostile strings ---------------------------------------------------------------------

SQL_SPECIAL = ["'; DROP TABLE stored_events; --", "%", "\\", "o1' OR '1'='1"]
CONTROL = ["a\x00b", "\x1b[31mred", "line\nbreak", "tab\there"]
OVERSIZED = ["x" * 10_000]
HOSTILE = SQL_SPECIAL + CONTROL + OVERSIZED
# Free text (names, document texts) is data: SQL-special strings are stored as sent.
HOSTILE_TEXT = ["a\x00b", "\x1b[31mred", "line\nbreak", "x" * 10_000]


def _set(body: Any, dotted: str, value: Any) -> Any:
    """A deep copy of `body` with the field at `dotted` (e.g. `entries.0.productId`) set."""
    out = copy.deepcopy(body)
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def _op(op_id: str) -> Op:
    return next(op for op in OPS if op.op_id == op_id)


# (operation, where, field, the name the error must start with, hostile values)
FIELDS: list[tuple[str, str, str, str, list[str]]] = [
    *[(op.op_id, "path", "tenant", "tenant", HOSTILE) for op in OPS],
    *[(op.op_id, "path", "orderId", "orderId", HOSTILE) for op in OPS if "{orderId}" in op.path],
    ("DELETE-pick-pack-remove-order-assignee", "path", "assigneeId", "assigneeId", HOSTILE),
    ("GET-pick-pack-retrieve-order-recalculation", "path", "jobId", "jobId", HOSTILE),
    ("GET-pick-pack-retrieve-order-cycles", "query", "siteCode", "siteCode", HOSTILE),
    ("GET-pick-pack-retrieve-packlist", "query", "siteCode", "siteCode", HOSTILE),
    ("GET-pick-pack-retrieve-packlist", "query", "deliveryDate", "deliveryDate", HOSTILE),
    ("GET-pick-pack-retrieve-packing-event", "query", "timestamp", "timestamp", HOSTILE),
    ("GET-pick-pack-retrieve-packing-event", "query", "pageNumber", "pageNumber", HOSTILE),
    ("GET-pick-pack-retrieve-packing-event", "query", "pageSize", "pageSize", HOSTILE),
    ("POST-pick-pack-add-order-assignee", "query", "force", "force", HOSTILE),
    *[
        ("POST-pick-pack-create-packing-event", "body", name, name, HOSTILE)
        for name in (
            "eventId",
            "orderNumber",
            "productId",
            "deliveryCycle",
            "supplierId",
            "unit",
            "timestamp",
            "site",
            "pickedAmount",
            "packedAmount",
            "canceledAmount",
            "bookProduct",
        )
    ],
    ("PATCH-pick-pack-update-order-status", "body", "packingStatus", "packingStatus", HOSTILE),
    ("POST-pick-pack-add-order-assignee", "body", "id", "id", HOSTILE),
    ("POST-pick-pack-add-order-assignee", "body", "siteCode", "siteCode", HOSTILE),
    ("POST-pick-pack-add-order-assignee", "body", "firstName", "firstName", HOSTILE_TEXT),
    ("POST-pick-pack-add-order-assignee", "body", "lastName", "lastName", HOSTILE_TEXT),
    ("PUT-pick-pack-update-order-packaging", "body", "0.entryId", "[0].entryId", HOSTILE),
    ("PUT-pick-pack-update-order-packaging", "body", "0.packedCount", "[0].packedCount", HOSTILE),
    ("POST-pick-pack-start-order-recalculations", "body", "jobType", "jobType", HOSTILE),
    ("POST-pick-pack-start-order-recalculations", "body", "orderIds.0", "orderIds[0]", HOSTILE),
    ("PUT-pick-pack-register-order", "body", "siteCode", "siteCode", HOSTILE),
    (
        "PUT-pick-pack-register-order",
        "body",
        "entries.0.productId",
        "entries[0].productId",
        HOSTILE,
    ),
    ("PUT-pick-pack-register-order", "body", "entries.0.entryId", "entries[0].entryId", HOSTILE),
    (
        "PUT-pick-pack-register-order",
        "body",
        "customer.lastName",
        "customer.lastName",
        # A document text may span lines, and be up to 64 KiB long.
        ["a\x00b", "\x1b[31mred", "x" * 70_000],
    ),
    (
        "PUT-pick-pack-register-order",
        "body",
        "entries.0.customerComment",
        "entries[0].customerComment",
        ["a\x00b", "x" * 70_000],  # document texts may be up to 64 KiB
    ),
]


def test_hostile_strings_in_every_path_query_and_body_field_are_400_naming_it_and_stored_nowhere(
    seeded: Service, db_url: str
) -> None:
    before = settled(seeded, db_url)
    h = auth("demo")
    tried = 0
    for op_id, where, name, label, values in FIELDS:
        op = _op(op_id)
        for value in values:
            if where == "path" and name == "tenant":
                resp = call(seeded, op, h, tenant=quote(value, safe=""))
            elif where == "path":
                resp = call(seeded, op, h, ids={name: value})
            elif where == "query":
                resp = call(seeded, op, h, params={**op.params, name: value})
            else:
                resp = call(seeded, op, h, body=_set(op.body, name, value))
            tried += 1
            shown = (op_id, where, name, value[:40])
            assert resp.status_code == 400, (*shown, resp.status_code, resp.text[:300])
            body = resp.json()
            assert body["code"] == 400, shown
            assert (
                body["detailInfo"].startswith(f"{label}:") or f"; {label}:" in body["detailInfo"]
            ), (*shown, body)
    print(f"{tried} hostile requests over {len(FIELDS)} fields: all 400, nothing stored")
    assert snapshot(db_url) == before


def test_identifiers_existing_scanners_send_are_accepted_and_returned_exactly(
    service: Service,
) -> None:
    """Base64, codes with parentheses or commas, a leading underscore: not SQL-special."""
    ids = {"eventId": "c2Nhbi0x==", "orderNumber": "EON(7)", "productId": "_p,1~x!*"}
    assert service.post_event({**EXAMPLE_EVENT, **ids}).status_code == 200
    assert service.post_event({**EXAMPLE_EVENT, **ids}).status_code == 200  # a retry
    [event] = service.events().json()
    assert {k: event[k] for k in ids} == ids


def test_an_oversized_or_spaced_saas_token_header_is_400_and_stored_nowhere(
    seeded: Service, db_url: str
) -> None:
    before = settled(seeded, db_url)
    op = _op("POST-pick-pack-create-packing-event")
    for value in ["x" * 10_000, "'; DROP TABLE stored_events; --"]:
        resp = call(seeded, op, {**auth("demo"), "saas-token": value})
        assert resp.status_code == 400, resp.text
        assert resp.json()["detailInfo"].startswith("saas-token:")
    assert snapshot(db_url) == before


@pytest.mark.parametrize(
    "name", ["O'Brien", "'; DROP TABLE stored_events; --", "100% \\ Müller-Lüdenscheidt", "山田"]
)
def test_an_apostrophe_or_sql_in_a_name_is_data_and_round_trips_exactly(
    service: Service, name: str
) -> None:
    """Names are free text: a warehouse must be able to store "O'Brien" (bound parameters)."""
    h = auth("demo")
    c = service.client
    doc = _set(ORDER_DOC, "customer.lastName", name)
    assert c.put("/pick-pack/demo/orders/o1", json=doc, headers=h).status_code == 200
    who = {**ASSIGNEE, "firstName": name, "lastName": name}
    assert c.post("/pick-pack/demo/orders/o1/assignees", json=who, headers=h).status_code == 200
    order = c.get("/pick-pack/demo/orders/o1", headers=h).json()
    assert order["customer"]["lastName"] == name
    assert order["assignees"] == [who]
    packlist = c.get(
        "/pick-pack/demo/orders", params={"siteCode": "main", "deliveryDate": DAY}, headers=h
    ).json()
    assert [p["assignees"] for p in packlist] == [[who]]
    # and the tables are all still there
    assert service.post_event({**EXAMPLE_EVENT, "orderNumber": "o1"}).status_code == 200
    assert len(service.events().json()) == 1


def test_an_order_with_a_long_multiline_text_is_registered_and_returned_exactly(
    service: Service,
) -> None:
    """Imported orders carry long texts (product descriptions, comments): up to 64 KiB."""
    h = auth("demo")
    text = "A long description.\n" * 2_000  # 40,000 characters on many lines
    doc = _set(ORDER_DOC, "entries.0.customerComment", text)
    assert service.client.put("/pick-pack/demo/orders/o1", json=doc, headers=h).status_code == 200
    order = service.client.get("/pick-pack/demo/orders/o1", headers=h).json()
    assert order["entries"][0]["customerComment"] == text


# -- body size ---------------------------------------------------------------------------

LIMIT = 1024 * 1024


def _is_413(resp: httpx.Response) -> None:
    assert resp.status_code == 413, resp.text[:200]
    body = resp.json()
    doc = reference_spec()
    jsonschema.validate(
        body, {"$ref": "#/components/schemas/errorMessage", "components": doc["components"]}
    )
    assert body["code"] == 413


def test_a_body_over_one_mib_with_a_content_length_is_413_and_stored_nowhere(
    seeded: Service, db_url: str
) -> None:
    before = settled(seeded, db_url)
    big = b'{"eventId": "' + b"x" * LIMIT + b'"}'
    for op in OPS:
        if op.method in ("POST", "PUT", "PATCH"):
            resp = seeded.client.request(
                op.method,
                op.url(),
                content=big,
                headers={**auth("demo"), "content-type": "application/json"},
            )
            _is_413(resp)
    # just under the limit is read and judged on its content (here: a 400 naming the field)
    under = {**EXAMPLE_EVENT, "site": "x" * (LIMIT - 1000)}
    resp = seeded.post_event(under)
    assert resp.status_code == 400 and resp.json()["detailInfo"].startswith("site:")
    assert snapshot(db_url) == before


def test_a_chunked_body_growing_over_one_mib_is_413_before_the_client_finishes(
    seeded: Service, db_url: str
) -> None:
    """Raw HTTP/1.1, chunked: the server answers once the limit is crossed, while the
    client is still sending (it never sends the final chunk), so the body is never
    read whole."""
    before = settled(seeded, db_url)
    parts = urlsplit(seeded.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            "POST /pick-pack/demo/events HTTP/1.1\r\n"
            f"Host: {parts.hostname}\r\n"
            f"Authorization: {auth('demo')['Authorization']}\r\n"
            "saas-token: saas-1\r\n"
            "Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = b"x" * 65536
        sent = 0
        response = b""
        sock.settimeout(0.05)
        while sent < 64 * LIMIT and b"\r\n\r\n" not in response:
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            except OSError:
                break  # the server closed its side after answering
            with contextlib.suppress(TimeoutError):
                response += sock.recv(65536)
        sock.settimeout(5)
        while b"\r\n\r\n" not in response:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert sent < 8 * LIMIT, f"the server let {sent} bytes in before answering"
    print(f"413 after {sent} bytes of a chunked body (limit {LIMIT})")
    assert snapshot(db_url) == before


# -- tenants -----------------------------------------------------------------------------


def _reads(service: Service, tenant: str, job_id: str) -> dict[str, Any]:
    h = auth(tenant)
    c = service.client
    return {
        "events": c.get(f"/pick-pack/{tenant}/events", headers=h).json(),
        "order": c.get(f"/pick-pack/{tenant}/orders/o1", headers=h).json(),
        "packlist": c.get(
            f"/pick-pack/{tenant}/orders",
            params={"siteCode": "main", "deliveryDate": DAY},
            headers=h,
        ).json(),
        "cycles": c.get(
            f"/pick-pack/{tenant}/orderCycles", params={"siteCode": "main"}, headers=h
        ).json(),
        "job": c.get(f"/pick-pack/{tenant}/jobs/recalculations/{job_id}", headers=h),
    }


def test_no_read_returns_another_tenants_data_even_with_the_same_ids(seeded: Service) -> None:
    c = seeded.client
    job = c.post(
        "/pick-pack/demo/jobs/recalculations",
        json={"jobType": "MANUAL", "orderIds": ["o1"]},
        headers=auth("demo"),
    ).json()["jobId"]
    # tenant "other" has nothing yet: every read is empty or 404
    empty = _reads(seeded, "other", job)
    assert empty["events"] == [] and empty["packlist"] == [] and empty["cycles"] == []
    assert empty["order"]["code"] == 404 and empty["job"].status_code == 404
    # now "other" writes the same ids with other content
    h = auth("other")
    other_doc = _set(ORDER_DOC, "customer.lastName", "Other")
    assert c.put("/pick-pack/other/orders/o1", json=other_doc, headers=h).status_code == 200
    other_event = {**EXAMPLE_EVENT, "orderNumber": "o1", "packedAmount": 2, "site": "other"}
    assert seeded.post_event(other_event, tenant="other").status_code == 200
    mine, theirs = _reads(seeded, "demo", job), _reads(seeded, "other", job)
    assert [e["site"] for e in mine["events"]] == ["main"]
    assert [e["site"] for e in theirs["events"]] == ["other"]
    assert mine["order"]["customer"]["lastName"] == "Lovelace"
    assert theirs["order"]["customer"]["lastName"] == "Other"
    assert mine["order"]["assignees"] == [ASSIGNEE] and "assignees" not in theirs["order"]
    assert [p["productsPacked"] for p in mine["packlist"]] == [1]
    assert [p["productsPacked"] for p in theirs["packlist"]] == [2]
    assert mine["job"].status_code == 200 and theirs["job"].status_code == 404


def test_a_deeply_nested_order_document_is_400_and_the_read_models_keep_working(
    seeded: Service, db_url: str
) -> None:
    """Found while fuzzing by hand: 400 nested arrays were stored, and the read models'
    JSON writer (orjson, at most 255 levels) then stopped the projection thread."""
    before = settled(seeded, db_url)
    h = {**auth("demo"), "content-type": "application/json"}
    for depth in (33, 400, 900):
        body = '{"entries": [], "x": ' + "[" * depth + "]" * depth + "}"
        resp = seeded.client.put("/pick-pack/demo/orders/o2", content=body, headers=h)
        assert resp.status_code == 400, resp.text[:200]
        assert resp.json()["detailInfo"].startswith("x[0]")
    assert snapshot(db_url) == before
    # the projections still follow: a write is visible in the next read
    assert (
        seeded.client.put("/pick-pack/demo/orders/o2", json=ORDER_DOC, headers=h).status_code == 200
    )
    assert seeded.client.get("/pick-pack/demo/orders/o2", headers=h).json()["id"] == "o2"
