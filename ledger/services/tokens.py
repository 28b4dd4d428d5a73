"""Issuing tokens to registered clients (OAuth client credentials), and what it needs.

- `Signer` (signing.py, re-exported): the service's own signing key.
- `hash_secret` / `secret_matches`: client secrets are kept only as scrypt hashes
  (standard library; memory-hard, so a stolen table is expensive to guess from) and
  compared in constant time.
- `Throttle`: failed client authentications, counted per (client id, address) pair and
  per address in a sliding window. Once either is over its bound the request is refused
  before any hash is computed, so a burst of wrong secrets costs a dictionary lookup
  each, not a slow hash each; and no count is kept per client id alone, so nobody can
  lock a client out from elsewhere (docs/how-to/register-clients.md gives the bounds,
  the reasons and the measurement).
- `RevocationList`: the revoked client ids, reloaded at most every `lifetime` seconds;
  the token verifier refuses a revoked client's tokens with it.
- `TokenService.issue`: the use case behind POST /oauth/token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from ledger.adapters import client_store
from ledger.domain import clients

# The signing key lives in signing.py; its names stay importable from here.
from ledger.services.signing import DEFAULT_AUDIENCE as DEFAULT_AUDIENCE
from ledger.services.signing import DEFAULT_ISSUER as DEFAULT_ISSUER
from ledger.services.signing import Signer as Signer
from ledger.services.signing import issues_tokens as issues_tokens
from ledger.services.signing import load_rsa_key as load_rsa_key
from ledger.services.signing import local_secret as local_secret
from ledger.services.signing import own_audience as own_audience
from ledger.services.signing import own_issuer as own_issuer
from ledger.services.signing import split_names as split_names

GRANT_TYPE = "client_credentials"
# Emporix answers 120 here; this service keeps no sessions, so nothing enforces it.
SESSION_IDLE_TIME = 120

# scrypt at n=2**14, r=8, p=1: 16 MiB and ~50 ms per hash on the test machine; the
# parameters travel with each hash, so they can be raised later without a migration.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32
MAX_SECRET_LENGTH = 512
MAX_CLIENT_ID_LENGTH = 128


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether `secret` hashes to `stored`; the comparison takes the same time either way."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(actual, expected)


# Checked against for an unknown client, so "no such client" takes as long as "wrong secret".
_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_secret(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


# -- throttling failed attempts -----------------------------------------------------------


class Throttle:
    """Failed client authentications per (client id, address) and per address, in a
    sliding window.

    Not per client id alone: client ids are not secret (`GET /events` shows them as
    `user` to every reader), so a count per client would let anyone keep a scanner out
    of work with a few wrong secrets a minute. Counted per pair, a guesser exhausts only
    its own address's attempts at that client, and the client still gets its token from
    its own address. What the pair bound gives up, guessing one client's secret from many
    addresses, is not a risk worth a lockout: a secret is 256 random bits
    (`register_client`), and each address is still bounded over all client ids.

    An attempt is counted before its secret is checked and forgiven if it succeeds, so
    concurrent requests cannot slip past the bound: at most `client_limit` secret checks
    per client id from one address and `address_limit` per address in any `window`
    seconds can fail. Per process: with N replicas an attacker gets N times the bound
    (docs/how-to/register-clients.md).
    Memory is bounded: beyond `max_keys` keys, idle ones are dropped first, then all.
    """

    def __init__(
        self, client_limit: int, address_limit: int, window: float, max_keys: int = 100_000
    ) -> None:
        self.limits = {"client": client_limit, "address": address_limit}
        self.window = window
        self.max_keys = max_keys
        self._attempts: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(client_id: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        # The pair's key joins the two with a separator no address contains.
        return ("client", f"{address}\x1f{client_id}"), ("address", address)

    def attempt(self, client_id: str, address: str, now: float) -> float:
        """Count an attempt and return 0, or return the seconds to wait (nothing counted)."""
        keys = self._keys(client_id, address)
        with self._lock:
            wait = 0.0
            for key in keys:
                times = self._attempts.get(key)
                if not times:
                    continue
                while times and times[0] <= now - self.window:
                    times.popleft()
                if len(times) >= self.limits[key[0]]:
                    wait = max(wait, times[0] + self.window - now)
            if wait > 0:
                return wait
            if len(self._attempts) >= self.max_keys:
                self._prune(now)
            for key in keys:
                self._attempts.setdefault(key, deque()).append(now)
            return 0.0

    def succeeded(self, client_id: str, address: str, now: float) -> None:
        """The attempt counted at `now` was a right secret: it is not a failure."""
        with self._lock:
            for key in self._keys(client_id, address):
                times = self._attempts.get(key)
                if times and now in times:
                    times.remove(now)

    def _prune(self, now: float) -> None:
        idle = [k for k, t in self._attempts.items() if not t or t[-1] <= now - self.window]
        for key in idle:
            del self._attempts[key]
        if len(self._attempts) >= self.max_keys:
            self._attempts.clear()


# Bounds of failed client authentications (docs/how-to/register-clients.md): per client
# id from one address, and per address.
CLIENT_FAILURES, ADDRESS_FAILURES, FAILURE_WINDOW_SECONDS = 10, 30, 60.0


# -- revocation -------------------------------------------------------------------------


class RevocationList:
    """Revoked client ids, reloaded when older than `lifetime` seconds.

    A revoked client's tokens stop working at most `lifetime` seconds after the revoke
    committed: the list in use was loaded before it, and is replaced on the first
    request after it ages out.
    """

    def __init__(self, load: Callable[[], frozenset[str]], lifetime: float) -> None:
        self._load = load
        self.lifetime = lifetime
        self._revoked: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def fresh_for(self, now: float | None = None) -> float:
        """Seconds until the list in use is stale (0 if it is already)."""
        now = now if now is not None else time.monotonic()
        return max(0.0, self._loaded_at + self.lifetime - now)

    def stale(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) - self._loaded_at >= self.lifetime

    def is_revoked(self, client_id: str) -> bool:
        if self.stale():
            with self._lock:
                if self.stale():  # another thread may have reloaded it meanwhile
                    started = time.monotonic()
                    self._revoked = self._load()
                    self._loaded_at = started
        return client_id in self._revoked


# -- the use case -----------------------------------------------------------------------


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error answer."""

    def __init__(
        self, error: str, description: str, status: int = 400, retry_after: float | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


_AUTH_FAILED = "client authentication failed"
_CONTROL = re.compile("[\x00-\x1f\x7f]")


@dataclass
class TokenService:
    """Checks a client's credentials and scope, and signs its token."""

    connect: Callable[[], AbstractContextManager[Any]]
    signer: Signer | None
    lifetime: int
    issuer: str
    audience: str
    throttle: Throttle = field(
        default_factory=lambda: Throttle(CLIENT_FAILURES, ADDRESS_FAILURES, FAILURE_WINDOW_SECONDS)
    )
    secret_checks: int = 0  # slow hashes computed (tests and docs measure the throttle by it)

    def issue(
        self,
        grant_type: str | None,
        client_id: str | None,
        client_secret: str | None,
        scope: str | None,
        address: str | None,
    ) -> dict[str, Any]:
        """The token answer's body; OAuthError with the reason otherwise."""
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != GRANT_TYPE:
            raise OAuthError("unsupported_grant_type", f"only {GRANT_TYPE} is supported")
        if not client_id or not client_secret:
            raise OAuthError("invalid_client", "client_id and client_secret are required", 401)
        for name, value in (("client_id", client_id), ("client_secret", client_secret)):
            # A NUL cannot even be looked up (PostgreSQL text refuses it): malformed, a 400.
            if _CONTROL.search(value):
                raise OAuthError("invalid_request", f"{name}: must not contain control characters")
        now = time.monotonic()
        client_key, address_key = client_id[:MAX_CLIENT_ID_LENGTH], address or "?"
        wait = self.throttle.attempt(client_key, address_key, now)
        if wait > 0:
            raise OAuthError(
                "invalid_client", "too many failed attempts; retry later", 429, retry_after=wait
            )
        record = self._authenticate(client_id, client_secret)
        if record is None:
            raise OAuthError("invalid_client", _AUTH_FAILED, 401)
        self.throttle.succeeded(client_key, address_key, now)
        try:
            granted = clients.grant(clients.parse_scope(scope), record.tenant, record.scopes)
        except clients.ScopeRefused as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        if self.signer is None:
            raise OAuthError(
                "unauthorized_client",
                "this service trusts only an external identity provider (PICKPACK_JWKS_URL) "
                "and issues no tokens",
            )
        return self._answer(record.client_id, granted)

    def _authenticate(self, client_id: str, secret: str) -> client_store.ClientRecord | None:
        """The client if the secret is its own and it is not revoked; None otherwise."""
        if len(client_id) > MAX_CLIENT_ID_LENGTH or len(secret) > MAX_SECRET_LENGTH:
            return None
        with self.connect() as conn:
            record = client_store.get(conn, client_id)
        self.secret_checks += 1
        matches = secret_matches(secret, record.secret_hash if record else _dummy_hash())
        if record is None or not matches or record.revoked:
            return None
        return record

    def _answer(self, client_id: str, granted: clients.Grant) -> dict[str, Any]:
        assert self.signer is not None
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "client_id": client_id,
            "tenant": granted.tenant,
            "scope": " ".join(granted.scopes),
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        return {
            "access_token": self.signer.sign(claims),
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "session_idle_time": SESSION_IDLE_TIME,
            "refresh_token": "",
            "refresh_token_expires_in": 0,
            "scope": granted.scope_text,
        }


# -- registering clients (the CLI's use case) --------------------------------------------


@dataclass(frozen=True)
class NewClient:
    client_id: str
    secret: str
    tenant: str
    scopes: tuple[str, ...]


def register_client(conn: Any, tenant: str, scopes: Iterable[str], name: str | None) -> NewClient:
    """Store a new client (secret hashed); the secret is returned this once, never again."""
    if not clients.valid_tenant(tenant):
        raise ValueError("tenant: must match ^[a-z][a-z0-9]+$ and be 3 to 16 characters long")
    allowed = clients.check_client_scopes(scopes)
    client_id = f"pp_{secrets.token_hex(10)}"
    secret = secrets.token_urlsafe(32)
    client_store.insert(conn, client_id, tenant, name, allowed, hash_secret(secret))
    return NewClient(client_id, secret, tenant, allowed)
