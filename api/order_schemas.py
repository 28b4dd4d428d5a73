"""Request bodies of the order operations, validated strictly (a wrong type is a 400)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NonEmpty = Annotated[str, Field(min_length=1)]


class OrderStatusChange(BaseModel):
    """The spec's OrderStatusChange; the value is checked by ledger.orders.change_status."""

    model_config = ConfigDict(strict=True, extra="ignore")

    packingStatus: Annotated[str, Field(examples=["IN_PROGRESS"])]


class PackagingProductsChange(BaseModel):
    """The spec's PackagingProductsChange."""

    model_config = ConfigDict(strict=True, extra="ignore")

    entryId: NonEmpty
    packedCount: Annotated[int, Field(ge=0, strict=True)]


class Assignee(BaseModel):
    """The spec's Assignee (all four fields required)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: NonEmpty
    siteCode: NonEmpty
    firstName: NonEmpty
    lastName: NonEmpty
