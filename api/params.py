"""Path, header and query parameters as the spec declares them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path

from ledger.domain.inputs import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    SAAS_TOKEN_MAX_LENGTH,
    SAAS_TOKEN_PATTERN,
)

Tenant = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9]+$",
        min_length=3,
        max_length=16,
        description="Your Emporix tenant name, in lowercase.",
    ),
]
SaasToken = Annotated[
    str,
    Header(
        alias="saas-token",
        pattern=SAAS_TOKEN_PATTERN,
        max_length=SAAS_TOKEN_MAX_LENGTH,
        description="Token provided by the Emporix system; kept with the event as metadata.",
    ),
]
OrderId = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        max_length=ID_MAX_LENGTH,
        description="Order's unique identifier (see docs/explanation/semantics.md: identifiers).",
    ),
]
