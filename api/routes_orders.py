"""Orders, assignees and order cycles: the pack station's view of an order.

Writes call the order use cases (ledger.services.order_commands), which run a pure
decision of ledger.domain.orders under the store's write lock; the domain's refusals
become status codes in api/errors.py.
Reads come from the projections (projections.read), after waiting for them to reach the
tenant's latest recorded event: a write of the tenant acknowledged before a read is
visible in it; a read whose wait timed out says so (`X-Pickpack-Stale`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from api.deps import CanManage, CanView, RuntimeDep
from api.errors import BadRequest, Gone, NotFound
from api.order_schemas import Assignee, OrderStatusChange, PackagingProductsChange
from api.params import OrderId, SaasToken, Tenant
from api.responses import ERROR_DOCS, SUCCESS, SUCCESS_DOC, JSONBody, freshness_headers
from api.schemas import ErrorMessage
from ledger.domain.errors import OrderArchived
from ledger.domain.order_document import (
    normalize,
    present_order,
    present_packlist_item,
)
from ledger.services import order_commands, story
from projections import read

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_DOCS,
    404: {"model": ErrorMessage, "description": "Resource has not been found."},
    409: {"model": ErrorMessage, "description": "Conflict: the order is CANCELLED."},
}
SiteCode = Annotated[
    str,
    Query(
        pattern=r"^[a-zA-Z0-9_-]+$",
        min_length=3,
        max_length=16,
        description="site code for the tenant",
    ),
]


# -- writes ------------------------------------------------------------------------------


@router.put(
    "/pick-pack/{tenant}/orders/{orderId}",
    operation_id="PUT-pick-pack-register-order",
    summary="Registering an order (extension)",
    tags=["Orders"],
    description="Registers or re-registers the spec's `Order` document. Server-owned fields "
    "(packingStatus, assignees, holdingAreaNumber, packagingProducts, entry counts) are "
    "ignored; the path's orderId wins over the body's id. Idempotent.",
    responses={**SUCCESS_DOC, **_ERRORS},
)
def register_order(
    tenant: Tenant,
    orderId: OrderId,
    principal: CanManage,
    rt: RuntimeDep,
    document: Annotated[Any, Body(description="The spec's Order document.")],
) -> JSONBody:
    order_commands.register(rt.store, tenant, orderId, normalize(document, orderId))
    return JSONBody(SUCCESS)


@router.patch(
    "/pick-pack/{tenant}/orders/{orderId}",
    operation_id="PATCH-pick-pack-update-order-status",
    summary="Updating an order",
    tags=["Orders"],
    responses={**SUCCESS_DOC, **_ERRORS},
)
def update_order_status(
    tenant: Tenant,
    orderId: OrderId,
    body: OrderStatusChange,
    saas_token: SaasToken,
    principal: CanManage,
    rt: RuntimeDep,
) -> JSONBody:
    order_commands.change_status(rt.store, tenant, orderId, body.packingStatus, principal.subject)
    return JSONBody(SUCCESS)


@router.put(
    "/pick-pack/{tenant}/orders/{orderId}/packaging",
    operation_id="PUT-pick-pack-update-order-packaging",
    summary="Updating packaging products for an order",
    tags=["Orders"],
    responses={**SUCCESS_DOC, **_ERRORS},
)
def update_order_packaging(
    tenant: Tenant,
    orderId: OrderId,
    body: list[PackagingProductsChange],
    saas_token: SaasToken,
    principal: CanManage,
    rt: RuntimeDep,
) -> JSONBody:
    packaging = [p.model_dump() for p in body]
    order_commands.change_packaging(rt.store, tenant, orderId, packaging)
    return JSONBody(SUCCESS)


@router.post(
    "/pick-pack/{tenant}/orders/{orderId}/assignees",
    operation_id="POST-pick-pack-add-order-assignee",
    summary="Adding an assignee to an order",
    tags=["Assignees"],
    responses={**SUCCESS_DOC, **_ERRORS},
)
def add_order_assignee(
    tenant: Tenant,
    orderId: OrderId,
    body: Assignee,
    principal: CanManage,
    rt: RuntimeDep,
    force: Annotated[
        bool,
        Query(
            description="true: the new assignee replaces the old one; false: 400 if the "
            "order already has an assignee."
        ),
    ] = True,
) -> JSONBody:
    assignee = body.model_dump()
    order_commands.add_assignee(rt.store, tenant, orderId, assignee, force)
    return JSONBody(SUCCESS)


@router.delete(
    "/pick-pack/{tenant}/orders/{orderId}/assignees/{assigneeId}",
    operation_id="DELETE-pick-pack-remove-order-assignee",
    summary="Deleting an assignee from an order",
    tags=["Assignees"],
    status_code=204,
    responses={204: {"description": "The request has succeeded."}, **_ERRORS},
)
def remove_order_assignee(
    tenant: Tenant,
    orderId: OrderId,
    assigneeId: Annotated[
        str,
        Path(
            pattern=r"^[a-zA-Z0-9_-]+$",
            min_length=3,
            max_length=16,
            description="assignee which will be removed from order",
        ),
    ],
    principal: CanManage,
    rt: RuntimeDep,
) -> Response:
    order_commands.remove_assignee(rt.store, tenant, orderId, assigneeId)
    return Response(status_code=204)


# -- reads -------------------------------------------------------------------------------


@router.get(
    "/pick-pack/{tenant}/orders/{orderId}",
    operation_id="GET-pick-pack-retrieve-order",
    summary="Retrieving an order",
    tags=["Orders"],
    responses=_ERRORS,
)
def retrieve_order(
    tenant: Tenant,
    orderId: OrderId,
    principal: CanView,
    rt: RuntimeDep,
    asOf: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Extension: the order as it stood at this instant (ISO 8601 "
            "date-time with `Z` or an offset), folded from the facts recorded by then.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
) -> JSONBody:
    if asOf is not None:
        at = _parse_instant(asOf)
        try:
            body = story.order_as_of(rt.store, tenant, orderId, at)
        except OrderArchived as exc:
            raise Gone(f"asOf: {exc}") from None
        if body is None:
            raise NotFound(f"orderId: order '{orderId}' was not registered at {asOf}")
        return JSONBody(body)
    with rt.views.read(tenant, read.ORDER_ROW_VIEWS) as (conn, freshness):
        row = read.order_row(conn, tenant, orderId)  # row and lines: one snapshot
    if row is None:
        raise NotFound(f"orderId: order '{orderId}' is not registered")
    return JSONBody(present_order(row, row["lines"]), headers=freshness_headers(freshness))


@router.get(
    "/pick-pack/{tenant}/orders",
    operation_id="GET-pick-pack-retrieve-packlist",
    summary="Retrieving a packlist",
    tags=["Orders"],
    description="The site's registered orders for the delivery date, ordered by delivery "
    "window end, then orderId; CANCELLED ones only with `includeCancelled=true` (an "
    "extension). productsTotal, productsPacked and productsCanceled are left out of an "
    "order whose entries count in unlike units (pieces and grams, say): `unitTotals` has "
    "them per unit, and `linesTotal` / `linesComplete` the order's progress (extensions, "
    "docs/reference/api.md).",
    responses=_ERRORS,
)
def retrieve_packlist(
    tenant: Tenant,
    siteCode: SiteCode,
    deliveryDate: Annotated[
        str,
        Query(description="Delivery date, YYYY-MM-DD.", json_schema_extra={"format": "date"}),
    ],
    principal: CanView,
    rt: RuntimeDep,
    includeCancelled: Annotated[
        bool,
        Query(
            description="Extension: true lists the day's CANCELLED orders too (the board "
            "counts them); false, the default, leaves them out as the packlist always did."
        ),
    ] = False,
) -> JSONBody:
    day = _parse_date(deliveryDate)
    with rt.views.read(tenant, read.ORDER_ROW_VIEWS) as (conn, freshness):
        rows = read.packlist_rows(  # with their lines
            conn, tenant, siteCode, day, include_cancelled=includeCancelled
        )
    return JSONBody(
        [present_packlist_item(r, r["lines"]) for r in rows],
        headers=freshness_headers(freshness),
    )


@router.get(
    "/pick-pack/{tenant}/orderCycles",
    operation_id="GET-pick-pack-retrieve-order-cycles",
    summary="Retrieving all order cycles",
    tags=["Order cycles"],
    description="Distinct delivery dates, today (UTC) onwards, of the site's open orders.",
    responses=_ERRORS,
)
def retrieve_order_cycles(
    tenant: Tenant, siteCode: SiteCode, principal: CanView, rt: RuntimeDep
) -> JSONBody:
    with rt.views.read(tenant, ("order_status",)) as (conn, freshness):
        days = read.order_cycles(conn, tenant, siteCode, datetime.now(UTC).date())
    return JSONBody(days, headers=freshness_headers(freshness))


def _parse_instant(value: str) -> datetime:
    """asOf, to the microsecond (the store's clock): ISO 8601 with `Z` or an offset."""
    try:
        # An offset's "+" arrives as a space when a client forgets to URL-encode it.
        at = datetime.fromisoformat(value.replace(" ", "+").replace("z", "Z"))
        if at.tzinfo is None:
            raise ValueError("needs a time zone: `Z` or an offset such as +02:00")
        return at.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"asOf: not an ISO 8601 date-time ({exc})") from None


def _parse_date(value: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest("deliveryDate: must be a date YYYY-MM-DD") from None
