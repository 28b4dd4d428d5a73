"""Bearer-token checks: who is calling, for which tenant, with which scopes.

Tokens are JWTs: HS256 with PICKPACK_JWT_SECRET, or RS256/ES256 verified against
PICKPACK_JWKS_URL (keys cached; an unknown `kid` triggers one refetch). Claims: `sub`,
`tenant`, `scope` (space-separated) and `exp` (required). Verified tokens are cached by
their raw text until they expire, so a scanner's repeated token costs one dict lookup.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from api.errors import BadRequest, Forbidden, Unauthorized
from ledger.config import Settings
from ledger.domain.inputs import text_problem

VIEW = "pickpack.pickpack_view"
MANAGE = "pickpack.pickpack_manage"
TENANT_PATTERN = re.compile(r"^[a-z][a-z0-9]+$")
_ASYMMETRIC = ["RS256", "ES256"]


@dataclass(frozen=True)
class Principal:
    """A verified caller."""

    subject: str | None
    tenant: str | None
    scopes: frozenset[str]
    expires_at: float


class JwksKeys:
    """Public keys from a JWKS URL, cached; refetched (at most once a second) on a miss.

    PyJWKClient refetches the set when a token names a kid it does not hold, but by
    default only once per 30 s, which would refuse a freshly rotated key for up to
    half a minute: one second still spares the identity provider a flood.
    """

    def __init__(self, url: str) -> None:
        self._client = jwt.PyJWKClient(
            url, cache_keys=True, lifespan=3600, timeout=5, cooldown_duration=1.0
        )

    def key_for(self, token: str) -> Any:
        return self._client.get_signing_key_from_jwt(token).key


class TokenVerifier:
    """Turns an Authorization header into a Principal, or raises Unauthorized."""

    def __init__(self, secret: str | None = None, jwks_url: str | None = None) -> None:
        if not secret and not jwks_url:
            raise ValueError("a JWT secret or a JWKS URL is required")
        self._secret = secret
        self._jwks = JwksKeys(jwks_url) if jwks_url else None
        self._cache: dict[str, Principal] = {}

    def may_block(self, authorization: str | None) -> bool:
        """True when verifying could fetch keys over the network (JWKS, token not cached)."""
        if self._jwks is None or not authorization:
            return False
        return authorization[7:].strip() not in self._cache

    def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise Unauthorized()
        token = authorization[7:].strip()
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if cached.expires_at > now:
                return cached
            raise Unauthorized(expired=True)
        principal = self._decode(token)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        options: Any = {"require": ["exp"]}
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg == "HS256" and self._secret:
                claims = jwt.decode(token, self._secret, algorithms=["HS256"], options=options)
            elif alg in _ASYMMETRIC and self._jwks is not None:
                key = self._jwks.key_for(token)
                claims = jwt.decode(token, key, algorithms=_ASYMMETRIC, options=options)
            else:
                raise Unauthorized()
        except jwt.ExpiredSignatureError:
            raise Unauthorized(expired=True) from None
        except (jwt.PyJWTError, ValueError):
            raise Unauthorized() from None
        scope = claims.get("scope", "")
        scopes = scope.split() if isinstance(scope, str) else [str(s) for s in scope]
        tenant = claims.get("tenant")
        subject = claims.get("sub")
        if subject is not None and text_problem(str(subject)):
            # `sub` is written into every event as `user`: a control character (a NUL
            # cannot even be stored) or a huge value makes the token unusable, not a 500.
            raise Unauthorized()
        return Principal(
            subject=str(subject) if subject is not None else None,
            tenant=str(tenant) if tenant is not None else None,
            scopes=frozenset(scopes),
            expires_at=float(claims["exp"]),
        )


def check_tenant_path(tenant: str) -> None:
    """The spec's tenant rule: `^[a-z][a-z0-9]+$`, 3 to 16 characters."""
    if not (3 <= len(tenant) <= 16 and TENANT_PATTERN.match(tenant)):
        raise BadRequest("tenant: must match ^[a-z][a-z0-9]+$ and be 3 to 16 characters long")


def authorize(principal: Principal, tenant: str, scope: str) -> None:
    """403 unless the token carries `scope` and was issued for `tenant`."""
    if scope not in principal.scopes:
        raise Forbidden("Scope validation failed", [f"Missing required scopes '[{scope}]'"])
    if principal.tenant != tenant:
        raise Forbidden(
            "Tenant validation failed",
            [f"The token is not valid for tenant '{tenant}'"],
        )


def mint_token(
    secret: str,
    tenant: str,
    scopes: list[str],
    subject: str = "dev-user",
    ttl_seconds: int = 30 * 24 * 3600,
) -> str:
    """An HS256 dev token (what `pickpack token` and `serve` print)."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "tenant": tenant,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def make_verifier(settings: Settings) -> TokenVerifier:
    """Configured verification, or the dev secret generated in the data dir."""
    if settings.jwt_secret or settings.jwks_url:
        return TokenVerifier(secret=settings.jwt_secret, jwks_url=settings.jwks_url)
    return TokenVerifier(secret=local_secret(settings.data_dir))


def local_secret(data_dir: Path, create: bool = True) -> str | None:
    """The dev secret kept in the data dir (mode 0600), generated on first use."""
    path = data_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_text().strip()
    with os.fdopen(handle, "w") as out:
        out.write(secret)
    return secret
