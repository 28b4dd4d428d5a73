"""Bodies of the order's story: the change feed, an order's history, corrections."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Identifier
from ledger.domain.corrections import REASON_MAX_LENGTH, Correction
from ledger.domain.inputs import MAX_AMOUNT

Delta = Annotated[int, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, strict=True)]


class Change(BaseModel):
    position: int = Field(description="The fact's position: commit order, unique, increasing.")
    recordedAt: str = Field(description="When the ledger recorded the fact (UTC).")
    orderId: str
    type: str = Field(
        description="PackingEventRecorded, OrderRegistered, PackingStatusChanged, "
        "AssigneeAdded, AssigneeRemoved, PackagingChanged, OrderFinished, OrderCancelled, "
        "HoldingAreaAssigned or CorrectionRecorded (docs/reference/api.md)."
    )
    user: str | None = Field(
        description="Who caused the fact (the token's subject); null where it records none."
    )
    data: dict[str, Any] = Field(description="The fact's public fields (camelCase).")


class ChangesPage(BaseModel):
    items: list[Change]
    next: int = Field(description="Ask again with after=next: the last item's position.")


class HistoryItem(BaseModel):
    position: int | None = Field(
        description="The fact's position (null for a delivery of a recalculation job)."
    )
    recordedAt: str
    type: str
    user: str | None = Field(description="Who caused the fact (the token's subject).")
    data: dict[str, Any]


class HistoryPage(BaseModel):
    orderId: str
    items: list[HistoryItem]
    next: int | None = Field(description="after= for the next page; null on the last page.")
    archivedBefore: str | None = Field(
        default=None,
        description="Present when some of the order's facts are archived: they were "
        "recorded before this cut-off, and the history starts after them.",
    )


class CorrectionCreate(BaseModel):
    """An audited correction: signed deltas of one unit, with a reason."""

    model_config = ConfigDict(strict=True, extra="ignore")

    correctionId: Annotated[Identifier, Field(examples=["fix-42"])]
    productId: Annotated[Identifier, Field(examples=["123"])]
    pickedAmount: Annotated[Delta, Field(examples=[0])] = 0
    packedAmount: Annotated[Delta, Field(examples=[-1])] = 0
    canceledAmount: Annotated[Delta, Field(examples=[0])] = 0
    unit: Annotated[Identifier, Field(examples=["H87"])]
    reason: Annotated[
        str,
        Field(min_length=1, max_length=REASON_MAX_LENGTH, examples=["scanned twice"]),
    ]

    def to_correction(self) -> Correction:
        return Correction(
            correction_id=self.correctionId,
            product_id=self.productId,
            picked=self.pickedAmount,
            packed=self.packedAmount,
            canceled=self.canceledAmount,
            unit=self.unit,
            reason=self.reason,
        )
