"""Request bodies of the order operations, validated strictly (a wrong type is a 400)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.schemas import Identifier
from ledger.domain.inputs import MAX_AMOUNT, TEXT_MAX_LENGTH, check_name
from ledger.domain.status import STATUSES

# A person's name is data ("O'Brien"): any text on one line, no control characters.
Name = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_LENGTH), AfterValidator(check_name)]


class OrderStatusChange(BaseModel):
    """The spec's OrderStatusChange; the value is checked by ledger.domain.orders.change_status."""

    model_config = ConfigDict(strict=True, extra="ignore")

    packingStatus: Annotated[
        str, Field(examples=["IN_PROGRESS"], json_schema_extra={"enum": list(STATUSES)})
    ]


class PackagingProductsChange(BaseModel):
    """The spec's PackagingProductsChange."""

    model_config = ConfigDict(strict=True, extra="ignore")

    entryId: Identifier
    packedCount: Annotated[int, Field(ge=0, le=MAX_AMOUNT, strict=True)]


class Assignee(BaseModel):
    """The spec's Assignee (all four fields required)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: Identifier
    siteCode: Identifier
    firstName: Name
    lastName: Name
