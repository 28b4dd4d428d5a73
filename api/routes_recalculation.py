"""finish, and the recalculation jobs: the routes that queue calculations requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CanManage, CanView, RuntimeDep
from api.errors import BadRequest, NotFound
from api.params import OrderId, SaasToken, Tenant
from api.responses import ERROR_DOCS, SUCCESS, SUCCESS_DOC, JSONBody
from api.schemas import ErrorMessage, Identifier
from ledger.domain import recalculation as rc
from ledger.services import order_commands
from ledger.services import recalculation as jobs

router = APIRouter()


class RecalculationJobCreation(BaseModel):
    """The spec's RecalculationJobCreation."""

    model_config = ConfigDict(strict=True, extra="ignore")

    jobType: Annotated[str, Field(examples=["MANUAL"], description="MANUAL or AUTOMATIC")]
    orderIds: Annotated[list[Identifier] | None, Field(examples=[["03DV9N3R", "5XS34VOB"]])] = None


JobId = Annotated[
    str,
    Path(
        pattern=r"^[a-zA-Z0-9_-]+$",
        min_length=3,
        max_length=16,
        description="jobId of requested order recalculation job",
    ),
]


@router.post(
    "/pick-pack/{tenant}/orders/{orderId}/finish",
    tags=["Orders"],
    operation_id="POST-pick-pack-finish-order",
    summary="Finishing an order",
    description="PACKED, assignees removed, and the order's exact packed totals queued for "
    "the Order Service's calculations endpoint (transactional outbox). No confirmation "
    "email is sent.",
    responses={
        **SUCCESS_DOC,
        **ERROR_DOCS,
        404: {"model": ErrorMessage, "description": "No such order is registered."},
        409: {"model": ErrorMessage, "description": "The order is CANCELLED."},
    },
)
def finish_order(
    tenant: Tenant, orderId: OrderId, saas_token: SaasToken, principal: CanManage, rt: RuntimeDep
) -> JSONBody:
    order_commands.finish(rt.store, tenant, orderId, principal.subject)
    return JSONBody(SUCCESS)


@router.post(
    "/pick-pack/{tenant}/jobs/recalculations",
    tags=["Recalculations"],
    operation_id="POST-pick-pack-start-order-recalculations",
    summary="Triggering an order recalculation",
    responses={
        200: {
            "description": "Job creation response",
            "content": {"application/json": {"example": {"jobId": "aB3dE5fG7hJ9kL1m"}}},
        },
        **ERROR_DOCS,
    },
)
def create_recalculation_job(
    tenant: Tenant, body: RecalculationJobCreation, principal: CanManage, rt: RuntimeDep
) -> JSONBody:
    if body.jobType not in rc.JOB_TYPES:
        raise BadRequest(f"jobType: must be one of {', '.join(rc.JOB_TYPES)}")
    order_ids = rc.unique(body.orderIds or [])
    if body.jobType == rc.MANUAL and not order_ids:
        raise BadRequest("orderIds: a MANUAL job needs at least one order id")
    job_id = rc.new_job_id()
    jobs.create_job(rt.store, tenant, body.jobType, order_ids, job_id)
    return JSONBody({"jobId": job_id})


@router.get(
    "/pick-pack/{tenant}/jobs/recalculations/{jobId}",
    tags=["Recalculations"],
    operation_id="GET-pick-pack-retrieve-order-recalculation",
    summary="Retrieving a job",
    responses={**ERROR_DOCS, 404: {"model": ErrorMessage, "description": "No such job."}},
)
def get_recalculation_job(
    tenant: Tenant, jobId: JobId, principal: CanView, rt: RuntimeDep
) -> JSONBody:
    job = jobs.get_job(rt.store, tenant, jobId)
    if job is None:
        raise NotFound(f"jobId: no recalculation job '{jobId}'")
    return JSONBody(job)
