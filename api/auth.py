"""Bearer-token checks: who is calling, for which tenant, with which scopes.

Tokens are JWTs: HS256 with PICKPACK_JWT_SECRET, RS256 with the service's own key
(PICKPACK_JWT_PRIVATE_KEY_FILE), or RS256/ES256 verified against PICKPACK_JWKS_URL (keys
cached; an unknown `kid` triggers one refetch). Claims: `sub`, `tenant`, `scope`
(space-separated) and `exp` (required); `iss` and `aud` when PICKPACK_JWT_ISSUER and
PICKPACK_JWT_AUDIENCE are set. Verified tokens are cached by their raw text until they
expire, so a scanner's repeated token costs one dict lookup. A token the service issued
to a registered client (signed with its own key, with a `client_id` claim) is also
checked against the revocation list (ledger/services/tokens.py), itself reloaded at most
every PICKPACK_REVOCATION_CACHE_SECONDS.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import jwt

from api.errors import BadRequest, Forbidden, Unauthorized
from ledger.config import Settings
from ledger.domain.inputs import text_problem
from ledger.services import tokens
from ledger.services.signing import MANAGE as MANAGE
from ledger.services.signing import VIEW as VIEW
from ledger.services.signing import mint_token as mint_token
from ledger.services.tokens import RevocationList
from ledger.services.tokens import local_secret as local_secret  # kept importable from here

TENANT_PATTERN = re.compile(r"^[a-z][a-z0-9]+$")
_ASYMMETRIC = ["RS256", "ES256"]


@dataclass(frozen=True)
class Principal:
    """A verified caller."""

    subject: str | None
    tenant: str | None
    scopes: frozenset[str]
    expires_at: float
    # Set for a token this service issued to a registered client (revocable).
    client_id: str | None = None


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

    def __init__(
        self,
        secret: str | None = None,
        jwks_url: str | None = None,
        *,
        own_key: tuple[str | None, Any] | None = None,
        issuers: tuple[str, ...] = (),
        audiences: tuple[str, ...] = (),
        revocations: RevocationList | None = None,
    ) -> None:
        """`own_key` is the service's own RS256 public key with its kid; `issuers` and
        `audiences`, when given, are the only `iss` and `aud` values accepted."""
        if not secret and not jwks_url and own_key is None:
            raise ValueError("a JWT secret, a JWKS URL or an own key is required")
        self._secret = secret
        self._jwks = JwksKeys(jwks_url) if jwks_url else None
        self._own_kid: str | None = own_key[0] if own_key is not None else None
        self._own_key: Any = own_key[1] if own_key is not None else None
        self._issuers = list(issuers)
        self._audiences = list(audiences)
        self._revocations = revocations
        self._cache: dict[str, Principal] = {}

    def may_block(self, authorization: str | None) -> bool:
        """True when verifying could do I/O: a JWKS key fetch, or reloading the revocations."""
        if not authorization:
            return False
        cached = self._cache.get(authorization[7:].strip())
        stale = self._revocations is not None and self._revocations.stale()
        if cached is None:
            return self._jwks is not None or stale
        return stale and cached.client_id is not None

    def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise Unauthorized()
        token = authorization[7:].strip()
        principal = self._cache.get(token)
        now = time.time()
        if principal is not None:
            if principal.expires_at <= now:
                raise Unauthorized(expired=True)
        else:
            principal = self._decode(token)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = principal
        revocations = self._revocations
        client_id = principal.client_id
        if client_id is not None and revocations is not None and revocations.is_revoked(client_id):
            raise Unauthorized()
        return principal

    def _decode(self, token: str) -> Principal:
        options: Any = {"require": ["exp"]}
        checks: dict[str, Any] = {}
        if self._issuers:
            checks["issuer"] = self._issuers
            options["require"] = ["exp", "iss"]
        if self._audiences:
            checks["audience"] = self._audiences
        else:
            options["verify_aud"] = False  # not configured: any `aud`, or none
        own = False
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg == "HS256" and self._secret:
                key: Any = self._secret
                own = True
            elif (
                alg == "RS256"
                and self._own_key is not None
                and (header.get("kid") == self._own_kid or self._jwks is None)
            ):
                key, own = self._own_key, True
            elif alg in _ASYMMETRIC and self._jwks is not None:
                key = self._jwks.key_for(token)
            else:
                raise Unauthorized()
            claims = jwt.decode(token, key, algorithms=[alg], options=options, **checks)
        except jwt.ExpiredSignatureError:
            raise Unauthorized(expired=True) from None
        except (jwt.PyJWTError, ValueError, TypeError):
            # TypeError: a key of another kind than the header's `alg` (an RSA key's kid
            # with ES256) is refused by PyJWT as "Expecting a PEM-formatted key".
            raise Unauthorized() from None
        scope = claims.get("scope", "")
        if isinstance(scope, str):  # RFC 9068: space-separated
            scopes = scope.split()
        elif isinstance(scope, list) and all(isinstance(s, str) for s in scope):
            scopes = scope
        else:  # a number, an object: not a scope a token can carry
            raise Unauthorized()
        tenant = claims.get("tenant")
        subject = claims.get("sub")
        if subject is not None and text_problem(str(subject)):
            # `sub` is written into every event as `user`: a control character (a NUL
            # cannot even be stored) or a huge value makes the token unusable, not a 500.
            raise Unauthorized()
        client_id = claims.get("client_id") if own else None
        return Principal(
            subject=str(subject) if subject is not None else None,
            tenant=str(tenant) if tenant is not None else None,
            scopes=frozenset(scopes),
            expires_at=float(claims["exp"]),
            client_id=str(client_id) if client_id is not None else None,
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


def make_verifier(
    settings: Settings,
    signer: tokens.Signer | None = None,
    revocations: RevocationList | None = None,
) -> TokenVerifier:
    """Configured verification, or the dev secret generated in the data dir.

    The service's own RS256 key (PICKPACK_JWT_PRIVATE_KEY_FILE) is trusted beside a
    secret or a JWKS URL; with none of the three, the dev secret is.
    """
    if signer is None and settings.jwt_private_key_file is not None:
        signer = tokens.Signer.from_settings(settings)
    own_key = None
    if signer is not None and signer.algorithm == "RS256":
        own_key = (signer.kid, signer.public_key)
    secret = settings.jwt_secret
    if not (secret or settings.jwks_url or own_key):
        secret = tokens.local_secret(settings.data_dir)
    return TokenVerifier(
        secret=secret,
        jwks_url=settings.jwks_url,
        own_key=own_key,
        issuers=tokens.split_names(settings.jwt_issuer),
        audiences=tokens.split_names(settings.jwt_audience),
        revocations=revocations,
    )
