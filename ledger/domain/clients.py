"""OAuth clients' scopes: what a token request asks for, and what it is granted.

Emporix's OAuth Service takes the tenant as one more scope, `tenant=acme`, beside the
service scopes (`tenant=acme pickpack.pickpack_view pickpack.pickpack_manage`). A
registered client belongs to one tenant and may hold some of this service's scopes; a
request is granted the intersection of what it asks for and what the client holds.

The rules (docs/explanation/semantics.md, "Token endpoint"):
- exactly one tenant is named, with `tenant=`, and it is the client's own;
- a scope this service does not know is refused: the request is malformed, not merely
  too broad, and silently dropping it would hide a misconfigured scanner;
- a known scope the client does not hold is left out of the grant (RFC 6749 3.3: the
  answer's `scope` says what was granted); nothing left is refused;
- no scope beside the tenant asks for everything the client holds (RFC 6749's default).

Pure: no I/O, standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

VIEW = "pickpack.pickpack_view"
MANAGE = "pickpack.pickpack_manage"
KNOWN_SCOPES = (VIEW, MANAGE)
TENANT_PREFIX = "tenant="
# The Pick-Pack spec's tenant rule (as api/auth.check_tenant_path).
TENANT_PATTERN = re.compile(r"^[a-z][a-z0-9]{2,15}$")
# RFC 6749 appendix A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


class ScopeRefused(ValueError):
    """The request's scope cannot be granted (OAuth's `invalid_scope`); says why."""


@dataclass(frozen=True)
class RequestedScope:
    """A token request's `scope`, parsed: the tenant it names and the other scopes."""

    tenant: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Grant:
    """What a token is issued for."""

    tenant: str
    scopes: tuple[str, ...]

    @property
    def scope_text(self) -> str:
        """The answer's `scope`, in Emporix's form: the tenant first, then the scopes."""
        return " ".join((TENANT_PREFIX + self.tenant, *self.scopes))


def valid_tenant(tenant: str) -> bool:
    return bool(TENANT_PATTERN.match(tenant))


def parse_scope(text: str | None) -> RequestedScope:
    """Parse a space-separated scope; ScopeRefused if it has no (or a bad) tenant."""
    tokens = (text or "").split()
    tenants = {t[len(TENANT_PREFIX) :] for t in tokens if t.startswith(TENANT_PREFIX)}
    others: list[str] = []
    for token in tokens:
        if token.startswith(TENANT_PREFIX):
            continue
        if not _SCOPE_TOKEN.match(token):
            raise ScopeRefused(f"scope: {token!r} is not a valid scope token")
        if token not in others:
            others.append(token)
    if not tenants:
        raise ScopeRefused("scope: name the tenant as tenant=<tenant>")
    if len(tenants) > 1:
        raise ScopeRefused("scope: name exactly one tenant")
    (tenant,) = tenants
    if not valid_tenant(tenant):
        raise ScopeRefused("scope: the tenant must match ^[a-z][a-z0-9]+$, 3 to 16 characters")
    return RequestedScope(tenant, tuple(others))


def check_client_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes a client may be registered with, in KNOWN_SCOPES order; ValueError if unknown."""
    wanted = set(scopes)
    unknown = sorted(wanted - set(KNOWN_SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {' '.join(KNOWN_SCOPES)}")
    if not wanted:
        raise ValueError("a client needs at least one scope")
    return tuple(s for s in KNOWN_SCOPES if s in wanted)


def grant(requested: RequestedScope, client_tenant: str, allowed: Iterable[str]) -> Grant:
    """The request intersected with what the client holds; ScopeRefused if nothing fits."""
    if requested.tenant != client_tenant:
        raise ScopeRefused(f"scope: this client is not registered for tenant {requested.tenant!r}")
    unknown = [s for s in requested.scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise ScopeRefused(f"scope: unknown scope {unknown[0]!r}")
    held = set(allowed)
    wanted = set(requested.scopes) if requested.scopes else held
    granted = tuple(s for s in KNOWN_SCOPES if s in wanted and s in held)
    if not granted:
        raise ScopeRefused("scope: this client holds none of the requested scopes")
    return Grant(client_tenant, granted)
