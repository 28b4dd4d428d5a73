"""/openapi.json describes the spec's operations: same paths, operationIds, parameters."""

from __future__ import annotations

from typing import Any

from devtools.harness.service import Service
from devtools.harness.support import SPEC_PATH, resolve, spec_document

# The contract, copied into the repository so a fresh clone tests against it.
SPEC = SPEC_PATH


def spec() -> dict[str, Any]:
    return spec_document(SPEC)


def test_every_spec_operation_is_served_with_its_operation_id_and_parameters(
    service: Service,
) -> None:
    ours = service.client.get("/openapi.json").json()
    theirs = spec()
    for path, item in theirs["paths"].items():
        for method, op in item.items():
            mine = ours["paths"].get(path, {}).get(method)
            assert mine is not None, f"{method.upper()} {path} is not served"
            assert mine["operationId"] == op["operationId"], path
            expected = {
                (p["name"], p["in"]) for p in (resolve(theirs, p) for p in op.get("parameters", []))
            }
            actual = {(p["name"], p["in"]) for p in mine.get("parameters", [])}
            assert expected <= actual, f"{op['operationId']}: missing {expected - actual}"


def test_the_event_body_schema_requires_what_the_spec_requires(service: Service) -> None:
    ours = service.client.get("/openapi.json").json()
    op = ours["paths"]["/pick-pack/{tenant}/events"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = resolve(ours, {"$ref": ref})
    required = set(spec()["components"]["schemas"]["OrderEntryEventCreate"]["required"])
    assert set(schema["required"]) == required
    assert set(spec()["components"]["schemas"]["OrderEntryEventCreate"]["properties"]) <= set(
        schema["properties"]
    )


def test_every_description_speaks_to_the_api_user(service: Service) -> None:
    """An operation's description is for whoever calls it: no module paths or notes on the
    code (FastAPI publishes a route function's docstring as its description)."""
    ours = service.client.get("/openapi.json").json()
    for path, item in ours["paths"].items():
        for method, op in item.items():
            text = op.get("description") or ""
            assert ".py" not in text and "api/" not in text, f"{method.upper()} {path}: {text}"
    create = ours["paths"]["/pick-pack/{tenant}/events"]["post"]
    assert "eventId" in create.get("description", ""), "POST /events has no user description"
