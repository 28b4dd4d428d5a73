"""Schemathesis, heavier than the suite's run: every operation of both specs.

    python bench/fuzz.py [--examples 300] [--spec ours|reference|both]
                         [--mode positive|negative|both] [--only OPERATION_ID...]

Starts the real service (uvicorn, real HTTP) on a fresh migrated database: the server
named by PICKPACK_TEST_DATABASE_URL, or an embedded PostgreSQL. Then, for each operation
of the service's own /openapi.json and of the reference spec (tests/spec), sends up to
`--examples` generated cases per generation mode with a valid token (and once more with
orderId, assigneeId and jobId fixed to ones that exist), and checks: no 5xx,
status code documented, body conforms to the schema. Prints one line per operation and
mode (cases sent, seconds, status histogram, failures) and every failure. Exit 1 on any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemathesis import GenerationMode  # noqa: E402

from devtools.harness.fuzzing import fuzz_spec, reference_spec, seed_known_ids  # noqa: E402
from devtools.harness.pg import DatabaseFactory, ServerSource  # noqa: E402
from devtools.harness.service import auth, start_service  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--spec", choices=["ours", "reference", "both"], default="both")
    parser.add_argument("--mode", choices=["positive", "negative", "both"], default="both")
    parser.add_argument("--only", nargs="*", help="operationIds to fuzz (default: all)")
    args = parser.parse_args()
    modes = {
        "positive": (GenerationMode.POSITIVE,),
        "negative": (GenerationMode.NEGATIVE,),
        "both": (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    }[args.mode]

    source = ServerSource()
    factory = DatabaseFactory(source.url)
    db_url = factory.migrated()
    server, thread, runtime, url = start_service(db_url, Path(tempfile.mkdtemp(prefix="fuzz-")))
    started = time.monotonic()
    try:
        specs = []
        if args.spec in ("ours", "both"):
            specs.append(("ours", httpx.get(f"{url}/openapi.json").json(), False))
        if args.spec in ("reference", "both"):
            specs.append(("reference", reference_spec(), True))
        reports = []
        for name, doc, lenient in specs:
            for report in fuzz_spec(
                name,
                doc,
                url,
                auth("demo"),
                args.examples,
                modes,
                lenient_errors=lenient,
                only=set(args.only) if args.only else None,
                seed=lambda: seed_known_ids(url, auth("demo")),
            ):
                print(report.line(), flush=True)
                reports.append(report)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.stop()
        factory.close()
        source.close()
    failures = [f for r in reports for f in r.failures]
    total = sum(r.examples for r in reports)
    print(
        f"\n{len(reports)} operation runs, {total} cases, {len(failures)} failures, "
        f"{time.monotonic() - started:.0f}s (--examples {args.examples})"
    )
    for report in reports:
        for failure in report.failures:
            print(f"\n[{report.spec} {report.mode} {report.label}] {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
