"""The ingest baseline: same framework, same body model, same token check, no database."""

from __future__ import annotations

import os

from fastapi import FastAPI, Header

from api.app import NO_FASTAPI_TELEMETRY
from api.auth import MANAGE, TokenVerifier, authorize
from api.responses import JSONBody
from api.schemas import OrderEntryEventCreate

verifier = TokenVerifier(secret=os.environ["PICKPACK_JWT_SECRET"])
# Configured as the service is (api/app.py): without FastAPI's OpenTelemetry bridge.
app = FastAPI(telemetry=NO_FASTAPI_TELEMETRY)


@app.post("/pick-pack/{tenant}/events")
async def create(
    tenant: str,
    body: OrderEntryEventCreate,
    authorization: str = Header(),
    saas_token: str = Header(alias="saas-token"),
) -> JSONBody:
    authorize(verifier.verify(authorization), tenant, MANAGE)
    return JSONBody({"message": "Success", "code": 200})
