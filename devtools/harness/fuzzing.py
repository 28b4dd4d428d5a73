"""Schemathesis against the live service: every operation of a spec, with a valid token.

Shared by tests/reliability/test_fuzz.py (a bounded run inside the suite) and bench/fuzz.py (the
heavier run). Each generated case is sent over real HTTP to the service; the response
must not be a 5xx and must conform to the spec that generated the case (status code
and body schema). Failures are collected rather than raised, so one run reports every
operation's findings, and each report says what was tried.

Two narrow, documented allowances for the reference spec (docs/RELIABILITY.md,
"Fuzzing"):
- the spec's GET /events `timestamp` parameter has `maxLength: 16` but a pattern of 22
  characters, so no value satisfies it (DESIGN.md item 9): the parameter is generated
  from our own rule (any string up to 40 characters) instead of that schema;
- it declares input constraints (patterns, lengths, required fields) on operations whose
  response list has no 400/404, although it defines those errors: a 400/404/409 answered
  with the spec's own `errorMessage` body is accepted there, and its body is checked
  against that schema.
"""

from __future__ import annotations

import copy
import functools
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from devtools.harness.support import SPEC_PATH, resolve

REFERENCE_SPEC = SPEC_PATH
# Error codes the reference spec defines (errorMessage) but does not list on every operation.
_UNDECLARED_ERRORS = {400, 404, 409}


@dataclass
class OperationReport:
    """What one operation was sent and what came back."""

    spec: str
    label: str
    mode: str
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    unsatisfiable: bool = False

    def line(self) -> str:
        codes = " ".join(f"{k}x{v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.spec:9} {self.mode:8} {self.label:60} {self.examples:4} cases "
            f"{self.seconds:5.1f}s  [{codes}]  failures={len(self.failures)}"
            + ("  (no case can be generated in this mode)" if self.unsatisfiable else "")
        )


@functools.cache
def _parsed_reference() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(REFERENCE_SPEC.read_text())
    return doc


def reference_spec() -> dict[str, Any]:
    """The reference spec (a fresh copy), with the self-contradictory timestamp schema
    replaced."""
    doc = copy.deepcopy(_parsed_reference())
    for param in doc["paths"]["/pick-pack/{tenant}/events"]["get"]["parameters"]:
        if param.get("name") == "timestamp":
            # maxLength 16 cannot hold the 22-character pattern: unsatisfiable as written.
            param["schema"] = {"type": "string", "maxLength": 40}
    return doc


def load_schema(doc: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(doc)


def _error_message_schema(doc: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"]["errorMessage"]
    return schema


def fuzz_operation(
    spec_name: str,
    doc: dict[str, Any],
    operation: Any,
    base_url: str,
    headers: dict[str, str],
    max_examples: int,
    mode: GenerationMode,
    lenient_errors: bool,
    tenant: str,
    known_ids: dict[str, str] | None = None,
) -> OperationReport:
    """Send up to `max_examples` generated cases; record statuses and check failures.

    With `known_ids`, those path parameters are fixed (an order and a job that exist),
    so the cases reach the code behind the 404s.
    """
    label = mode.value + ("+ids" if known_ids else "")
    report = OperationReport(spec_name, operation.label, label)
    error_schema = _error_message_schema(doc) if lenient_errors else {}
    session = requests.Session()
    declared = {str(code) for code in operation.responses.status_codes}

    def check(case: Any, response: Any) -> None:
        status = response.status_code
        if status >= 500:
            report.failures.append(f"{status} server error: {_describe(case, response)}")
            return
        if lenient_errors and status in _UNDECLARED_ERRORS and str(status) not in declared:
            try:
                jsonschema.validate(response.json(), error_schema)
            except (ValueError, jsonschema.ValidationError) as exc:
                report.failures.append(
                    f"undeclared {status} body: {exc} {_describe(case, response)}"
                )
            return
        try:
            case.validate_response(
                response, checks=[status_code_conformance, response_schema_conformance]
            )
        except (Exception, BaseExceptionGroup) as exc:  # FailureGroup: its message says what
            report.failures.append(f"{type(exc).__name__}: {exc} {_describe(case, response)}")

    # The token acts on one tenant: a generated tenant would only ever meet 400/403.
    fixed = {"tenant": tenant, **(known_ids or {})}

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        report.examples += 1
        report.statuses[response.status_code] += 1
        check(case, response)

    started = time.monotonic()
    try:
        run()
    except Unsatisfiable:
        # Negative mode on an operation with nothing left to break (e.g. only a free
        # string path parameter once the tenant is fixed): nothing to send.
        report.unsatisfiable = True
    finally:
        report.seconds = time.monotonic() - started
        session.close()
    return report


def _describe(case: Any, response: Any) -> str:
    body = response.text[:300]
    return (
        f"\n    {case.method} {case.formatted_path} query={case.query} "
        f"headers={ {k: v for k, v in (case.headers or {}).items() if k != 'Authorization'} } "
        f"body={str(case.body)[:300]!r}\n    -> {response.status_code} {body}"
    )


def _negatable(doc: dict[str, Any], raw: dict[str, Any]) -> bool:
    """Whether a negative case exists: some input beyond the fixed tenant is constrained.

    A free string path parameter cannot be made invalid (nor left out), and an
    operation with nothing else (e.g. the reference GET order) has no negative case.
    """
    if raw.get("requestBody"):
        return True
    for param in raw.get("parameters", []):
        param = resolve(doc, param)
        if param.get("name") == "tenant":
            continue
        if param.get("required") and param.get("in") != "path":
            return True  # a negative case may leave it out
        schema = resolve(doc, param.get("schema", {}))
        if set(schema) - {"type", "description", "title", "examples", "example"}:
            return True
        if schema.get("type") != "string":
            return True
    return False


def fuzz_spec(
    spec_name: str,
    doc: dict[str, Any],
    base_url: str,
    headers: dict[str, str],
    max_examples: int,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    lenient_errors: bool = False,
    only: set[str] | None = None,
    tenant: str = "demo",
    seed: Callable[[], dict[str, str]] | None = None,
) -> list[OperationReport]:
    """Every operation of `doc` (or those in `only`, by operationId), in each mode.

    With `seed` (see seed_known_ids), each operation with an orderId, assigneeId or jobId
    path parameter gets one more positive run with them fixed to things that exist,
    made afresh for that operation (a run that cancels its order spoils only its own).
    """
    schema = load_schema(doc)
    reports = []
    for result in schema.get_all_operations():
        operation = result.ok()
        op_id = operation.definition.raw.get("operationId", operation.label)
        if only is not None and op_id not in only:
            continue
        for mode in modes:
            if mode is GenerationMode.NEGATIVE and not _negatable(doc, operation.definition.raw):
                report = OperationReport(spec_name, operation.label, mode.value)
                report.unsatisfiable = True  # hypothesis would only search in vain
                reports.append(report)
                continue
            reports.append(
                fuzz_operation(
                    spec_name,
                    doc,
                    operation,
                    base_url,
                    headers,
                    max_examples,
                    mode,
                    lenient_errors,
                    tenant,
                )
            )
        path_names = {
            resolve(doc, p).get("name", "")
            for p in operation.definition.raw.get("parameters", [])
            if resolve(doc, p).get("in") == "path"
        }
        wanted = path_names & {"orderId", "assigneeId", "jobId"}
        if seed is not None and wanted:
            fixed = {k: v for k, v in seed().items() if k in wanted}
            reports.append(
                fuzz_operation(
                    spec_name,
                    doc,
                    operation,
                    base_url,
                    headers,
                    max_examples,
                    GenerationMode.POSITIVE,
                    lenient_errors,
                    tenant,
                    fixed,
                )
            )
    return reports


def seed_known_ids(base_url: str, headers: dict[str, str], tenant: str = "demo") -> dict[str, str]:
    """A registered order with one entry and an assignee, and a MANUAL job for it."""
    order_id = f"fz{uuid.uuid4().hex[:12]}"
    document: dict[str, Any] = {
        "id": order_id,
        "siteCode": "main",
        "entries": [{"entryId": "e1", "productId": "p1", "totalCount": 3, "orderUnit": "H87"}],
    }
    assignee = {"id": "fuzz-a1", "siteCode": "main", "firstName": "Fuzz", "lastName": "O'Test"}
    with requests.Session() as session:
        base = f"{base_url}/pick-pack/{tenant}"
        session.headers.update(headers)
        session.put(f"{base}/orders/{order_id}", json=document).raise_for_status()
        session.post(f"{base}/orders/{order_id}/assignees", json=assignee).raise_for_status()
        job = session.post(
            f"{base}/jobs/recalculations", json={"jobType": "MANUAL", "orderIds": [order_id]}
        )
        job.raise_for_status()
    return {"orderId": order_id, "assigneeId": "fuzz-a1", "jobId": job.json()["jobId"]}
