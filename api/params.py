"""Path, header and query parameters as the spec declares them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path

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
        description="Token provided by the Emporix system; kept with the event as metadata.",
    ),
]
OrderId = Annotated[str, Path(description="Order's unique identifier.")]
