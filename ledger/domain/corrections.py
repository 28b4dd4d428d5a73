"""Audited corrections of an order line: the decision, on the state read under the lock.

A correction undoes an over-scan (or adds what was missed) with signed deltas and a
reason, instead of a packing event, whose amounts the spec keeps non-negative. It is
recorded on the line's stream and counted by the same folds as scans, as deltas of its
unit. Pure: the store runs the decision under its write lock, so the below-zero check
cannot race a scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.domain import events as ev
from ledger.domain.amounts import Amounts
from ledger.domain.errors import CorrectionRefused, InvalidCommand, OrderClosed
from ledger.domain.inputs import MAX_AMOUNT, text_problem
from ledger.domain.scan_fields import AMOUNTS
from ledger.domain.status import CANCELLED, OrderState

REASON_MAX_LENGTH = 500


@dataclass(frozen=True)
class Correction:
    """A correction as requested (the API's fields, validated for type and length)."""

    correction_id: str
    product_id: str
    picked: int
    packed: int
    canceled: int
    unit: str
    reason: str

    def same_as(self, order_id: str, stored_order: str, stored: dict[str, Any]) -> bool:
        """Whether a recorded correction with this id (its order, its stored state) says
        exactly this (a replay)."""
        fact = ev.restored(ev.CorrectionRecorded, stored)
        return stored_order == order_id and (
            fact.correction_id,
            fact.product_id,
            fact.picked,
            fact.packed,
            fact.canceled,
            fact.unit,
            fact.reason,
        ) == (
            self.correction_id,
            self.product_id,
            self.picked,
            self.packed,
            self.canceled,
            self.unit,
            self.reason,
        )


def correct(
    state: OrderState,
    correction: Correction,
    recorded: tuple[str, dict[str, Any]] | None,
    sums: Mapping[str, Amounts],
    user: str | None,
    saas_token: str | None,
) -> list[ev.LedgerEvent]:
    """The facts to record for `correction`, or a refusal.

    `recorded`: the tenant's correction with the same id (its order, stored fields), if
    any; `sums`: the line's amounts per unit, scans and corrections.
    A replay with the same content records nothing (200); other content is a 409.
    """
    if recorded is not None:
        if correction.same_as(state.order_id, *recorded):
            return []
        raise CorrectionRefused(
            f"correctionId: '{correction.correction_id}' was already used with other content"
        )
    if state.status == CANCELLED:
        raise OrderClosed(f"order '{state.order_id}' is CANCELLED")
    if not (correction.picked or correction.packed or correction.canceled):
        raise InvalidCommand("pickedAmount, packedAmount, canceledAmount: all are zero")
    if not 1 <= len(correction.reason) <= REASON_MAX_LENGTH:
        raise InvalidCommand(f"reason: 1 to {REASON_MAX_LENGTH} characters")
    problem = text_problem(correction.reason)  # one line, like every other free text
    if problem:
        raise InvalidCommand(f"reason: {problem}")
    current = sums.get(correction.unit, Amounts())
    for name, field in AMOUNTS:
        delta, total = getattr(correction, field), getattr(current, field)
        if total + delta < 0:
            raise CorrectionRefused(
                f"{name}: the line's total of {total} {correction.unit} would fall "
                f"below zero ({delta})"
            )
        if total + delta > MAX_AMOUNT:
            # Clients read the counts as 32-bit integers (the spec's `integer`).
            raise CorrectionRefused(
                f"{name}: the line's total of {total} {correction.unit} would pass "
                f"{MAX_AMOUNT} (+{delta})"
            )
    return [
        ev.CorrectionRecorded(
            tenant=state.tenant,
            order_id=state.order_id,
            correction_id=correction.correction_id,
            product_id=correction.product_id,
            picked=correction.picked,
            packed=correction.packed,
            canceled=correction.canceled,
            unit=correction.unit,
            reason=correction.reason,
            user=user,
            saas_token=saas_token,
        )
    ]
