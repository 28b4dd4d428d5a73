"""What the service accepts as an identifier, a free text or an amount. No I/O.

Identifiers (eventId, orderNumber/orderId, productId, entryId, assignee id, site,
unit, supplierId, deliveryCycle, recalculation orderIds) are keys: they appear in URLs,
stream names and index columns, and scanners generate them. They get a conservative
pattern: an ASCII letter, digit or `_` first, then letters, digits and
`. _ : @ + - = ~ ! * ( ) ,` (nothing SQL-special, no whitespace, nothing that ends or
splits a URL path: existing scanners' codes, base64 padding and the like pass), at
most 128 characters. So `'; DROP TABLE ...`, `%`, `\\`, a NUL, an escape sequence, a
newline or a 10 kB value are a 400 naming the field, never stored.

Free texts (a person's first and last name, the strings of a registered Order
document) are data: any Unicode except control characters (a NUL cannot even be
stored in PostgreSQL text, and wedged the projections when it was let in) and lone
surrogates (not encodable as UTF-8), at most 1000 characters. An apostrophe is data:
"O'Brien" is stored and returned exactly (every SQL parameter is bound, never spliced).
Document texts may hold tab, CR and LF (a customer comment has lines); names may not.
A document text may be longer (64 KiB: an imported order carries product descriptions,
and refusing a real order would stop its packing); the request body limit (1 MiB)
bounds the whole.

Amounts and counts are at most 2**31 - 1: line totals are summed in bigint columns,
and a few events near 2**63 would overflow them.
"""

from __future__ import annotations

import math
import re
from typing import Any

ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._:@+=~!*(),-]*$"
ID_MAX_LENGTH = 128
TEXT_MAX_LENGTH = 1000
DOCUMENT_TEXT_MAX_LENGTH = 65_536
MAX_AMOUNT = 2**31 - 1
# How deep a registered Order document may nest (the spec's is 4 levels deep).
MAX_DEPTH = 32
# What a saas-token header may hold: visible ASCII (it is a signed token), at most 8 kB.
SAAS_TOKEN_PATTERN = r"^[!-~]+$"
SAAS_TOKEN_MAX_LENGTH = 8192

_ID = re.compile(ID_PATTERN)
# C0 and C1 controls, DEL, and lone surrogates; LINE_TEXT also refuses tab, CR, LF.
_BAD_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Keys of a registered document that are identifiers, wherever they appear in it.
_ID_KEYS = frozenset({"entryId", "productId", "siteCode"})


def identifier_problem(value: str) -> str | None:
    """Why `value` is not an acceptable identifier, or None."""
    if not value:
        return "must not be empty"
    if len(value) > ID_MAX_LENGTH:
        return f"must be at most {ID_MAX_LENGTH} characters"
    if not _ID.match(value):
        return f"must match {ID_PATTERN}"
    return None


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why `value` is not an acceptable free text, or None (multiline: a document's)."""
    limit = DOCUMENT_TEXT_MAX_LENGTH if multiline else TEXT_MAX_LENGTH
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if (_BAD_IN_TEXT if multiline else _BAD_IN_LINE).search(value):
        return "must not contain control characters"
    return None


def check_name(value: str) -> str:
    """A person's name: free text on one line (a validator: raises ValueError)."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def document_problem(value: Any, where: str = "", depth: int = 0) -> str | None:
    """The first unacceptable value in a JSON document, as `field: why`, or None.

    Identifier keys (entryId, productId, siteCode) follow the identifier rule; every
    other string the free-text rule; keys are short one-line texts; integers fit in
    64 bits and floats are finite; nesting is at most MAX_DEPTH deep (the read models
    write documents with orjson, which refuses more than 255 levels and more than 64
    bits: a document it refuses stopped the projection thread).
    """
    if depth > MAX_DEPTH:
        return f"{where or 'body'}: nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            problem = text_problem(key) if len(key) <= ID_MAX_LENGTH else "key too long"
            if problem:
                return f"{where or 'body'}: a key {problem}"
            if key in _ID_KEYS and isinstance(item, str):
                problem = identifier_problem(item)
                if problem:
                    return f"{path}: {problem}"
                continue
            found = document_problem(item, path, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = document_problem(item, f"{where}[{i}]", depth + 1)
            if found:
                return found
    elif isinstance(value, str):
        problem = text_problem(value, multiline=True)
        if problem:
            return f"{where or 'body'}: {problem}"
    elif isinstance(value, bool) or value is None:
        return None
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            return f"{where or 'body'}: integer out of range"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'body'}: must be a finite number"
    return None
