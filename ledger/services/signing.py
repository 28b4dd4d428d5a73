"""The service's own signing key and the names it signs with.

`Signer`: RS256 with a PEM key file (PICKPACK_JWT_PRIVATE_KEY_FILE; its public half is
served at /.well-known/jwks.json), otherwise HS256 with PICKPACK_JWT_SECRET, otherwise
the dev secret in the data dir. Kept apart from tokens.py (issuing tokens to clients)
because the API's verifier needs the key without the client machinery.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ledger.config import ConfigError, Settings

# The two scopes of the Emporix API (a token carries them in `scope`).
VIEW = "pickpack.pickpack_view"
MANAGE = "pickpack.pickpack_manage"

DEFAULT_ISSUER = "pickpack-ledger"
DEFAULT_AUDIENCE = "pickpack-ledger"
SECRET_FILE = "jwt-secret"  # in the data dir: the dev secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def local_secret(data_dir: Path, create: bool = True) -> str | None:
    """The dev secret kept in the data dir (mode 0600), generated on first use.

    Replicas sharing a data dir may start at the same moment: the secret is written whole
    to a file of its own, then hard-linked to its name, which fails if the name exists. So
    exactly one secret wins, every process uses the winner, and no reader ever finds the
    name with a partial or empty file behind it.
    """
    path = data_dir / SECRET_FILE
    existing = _read_secret(path)
    if existing is not None or not create:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    handle, written = tempfile.mkstemp(dir=data_dir, prefix=f".{SECRET_FILE}.")  # mode 0600
    try:
        with os.fdopen(handle, "w") as out:
            out.write(secret)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(written, path)
        except FileExistsError:  # another process won: use its secret
            winner = _read_secret(path)
            assert winner is not None  # the name only ever appears with a whole secret
            return winner
        except OSError as exc:
            raise ConfigError(
                f"cannot create the dev secret {path} ({exc.strerror}): its filesystem "
                "must allow hard links; or set PICKPACK_JWT_SECRET"
            ) from None
        _fsync_dir(data_dir)
        return secret
    finally:
        os.unlink(written)


def _read_secret(path: Path) -> str | None:
    """The secret in `path`, None if there is none; an empty one is refused (an older
    release could leave it empty when it stopped between creating and writing it)."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not secret:
        raise ConfigError(
            f"the dev secret {path} is empty (a start was interrupted while writing it): "
            "delete it and start again, or set PICKPACK_JWT_SECRET"
        )
    return secret


def _fsync_dir(directory: Path) -> None:
    """Make the new name itself durable (a crash must not lose the secret tokens carry)."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint of an RSA key: a stable `kid` derived from the key."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def load_rsa_key(path: Path) -> Any:
    """The RSA private key in a PEM file; ConfigError naming the variable otherwise."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    name = "PICKPACK_JWT_PRIVATE_KEY_FILE"
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{name}: {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ConfigError(f"{name}: {path} must hold an RSA key of at least 2048 bits")
    return key


@dataclass(frozen=True)
class Signer:
    """The key the service signs its own tokens with."""

    algorithm: str
    key: Any
    kid: str | None = None
    public_jwk: dict[str, Any] | None = None

    @classmethod
    def rs256(cls, private_key: Any) -> Signer:
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key())
        )
        kid = _thumbprint(jwk)
        return cls("RS256", private_key, kid, {**jwk, "kid": kid, "alg": "RS256", "use": "sig"})

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        if settings.jwt_private_key_file is not None:
            return cls.rs256(load_rsa_key(settings.jwt_private_key_file))
        if settings.jwt_secret:
            return cls("HS256", settings.jwt_secret)
        secret = local_secret(settings.data_dir)
        assert secret is not None
        return cls("HS256", secret)

    @property
    def public_key(self) -> Any:
        return self.key.public_key() if self.algorithm == "RS256" else None

    def sign(self, claims: dict[str, Any]) -> str:
        headers = {"kid": self.kid} if self.kid else None
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)

    def jwks(self) -> dict[str, Any]:
        """The public keys (a shared HS256 secret is never published: an empty set)."""
        return {"keys": [self.public_jwk] if self.public_jwk else []}


def own_issuer(settings: Settings) -> str:
    return _first(settings.jwt_issuer) or DEFAULT_ISSUER


def own_audience(settings: Settings) -> str:
    return _first(settings.jwt_audience) or DEFAULT_AUDIENCE


def _first(listed: str | None) -> str | None:
    names = split_names(listed)
    return names[0] if names else None


def split_names(listed: str | None) -> tuple[str, ...]:
    """A comma-separated setting's values (PICKPACK_JWT_ISSUER, PICKPACK_JWT_AUDIENCE)."""
    return tuple(n.strip() for n in (listed or "").split(",") if n.strip())


def issues_tokens(settings: Settings) -> bool:
    """False when only an external identity provider is trusted (PICKPACK_JWKS_URL alone):
    a token signed with the dev secret would then be refused by this very service."""
    own_key = settings.jwt_secret or settings.jwt_private_key_file
    return bool(own_key or not settings.jwks_url)


def mint_token(
    secret: Any,
    tenant: str,
    scopes: list[str],
    subject: str = "dev-user",
    ttl_seconds: int = 30 * 24 * 3600,
    issuer: str | None = None,
    audience: str | None = None,
    algorithm: str = "HS256",
    kid: str | None = None,
) -> str:
    """A dev token (what `pickpack token` and `serve` print): HS256 with `secret`, or
    RS256 when `secret` is the service's own private key."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant": tenant,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)
