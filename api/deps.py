"""Shared request dependencies: the runtime, and the auth gate for each scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from api.auth import MANAGE, VIEW, Principal, authorize, check_tenant_path
from api.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _gate(scope: str) -> Callable[..., Principal]:
    def gate(
        request: Request,
        tenant: str,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Principal:
        # Order matters: who are you (401), is the path well formed (400), may you (403).
        principal = runtime(request).verifier.verify(authorization)
        check_tenant_path(tenant)
        authorize(principal, tenant, scope)
        return principal

    return gate


CanView = Annotated[Principal, Depends(_gate(VIEW))]
CanManage = Annotated[Principal, Depends(_gate(MANAGE))]
RuntimeDep = Annotated[Runtime, Depends(runtime)]
