"""A leaner baseline: the same body model and token check on a bare Starlette route.

Not the issue's baseline (that is bench/baseline_app.py, a FastAPI endpoint); it measures
what FastAPI's request handling (dependency solving, parameter validation, response
building) costs on this route: `python bench/ingest.py --baseline-app
bench.starlette_baseline_app:app` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import os

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import MANAGE, TokenVerifier, authorize
from api.schemas import OrderEntryEventCreate

verifier = TokenVerifier(secret=os.environ["PICKPACK_JWT_SECRET"])
SUCCESS = orjson.dumps({"message": "Success", "code": 200})


async def create(request: Request) -> Response:
    authorize(
        verifier.verify(request.headers.get("authorization")),
        request.path_params["tenant"],
        MANAGE,
    )
    try:
        OrderEntryEventCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        return Response(orjson.dumps({"code": 400, "detailInfo": str(exc)}), status_code=400)
    if request.headers.get("saas-token") is None:
        return Response(orjson.dumps({"code": 400, "detailInfo": "saas-token"}), status_code=400)
    return Response(SUCCESS, media_type="application/json")


app = Starlette(routes=[Route("/pick-pack/{tenant}/events", create, methods=["POST"])])
