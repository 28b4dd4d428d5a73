"""Shared request dependencies: the runtime, and the auth gate for each scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from api.auth import MANAGE, VIEW, Principal, authorize, check_tenant_path
from bootstrap.runtime import Runtime


async def runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs sync dependencies in its thread pool, a thread hop
    # per request that measured as a large part of the ingest path's cost.
    rt: Runtime = request.app.state.runtime
    return rt


def _gate(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def gate(
        request: Request,
        tenant: str,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Principal:
        # Order matters: who are you (401), is the path well formed (400), may you (403).
        verifier = request.app.state.verifier
        if verifier.may_block(authorization):
            # A JWKS key fetch does network I/O: keep it off the event loop.
            principal = await run_in_threadpool(verifier.verify, authorization)
        else:
            principal = verifier.verify(authorization)
        check_tenant_path(tenant)
        authorize(principal, tenant, scope)
        return principal

    return gate


CanView = Annotated[Principal, Depends(_gate(VIEW))]
CanManage = Annotated[Principal, Depends(_gate(MANAGE))]
RuntimeDep = Annotated[Runtime, Depends(runtime)]
