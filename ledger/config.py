"""Service configuration, read once from the fixed PICKPACK_* environment names.

The names are DESIGN.md's (users and tests depend on them) plus a few documented extras
for recalculation delivery and identity (docs/reference/configuration.md). Values are
validated by pydantic-settings when they are read, so a wrong value stops start-up with a
message that names the variable, instead of failing later inside a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PREFIX = "PICKPACK_"

# DESIGN.md's configuration table, in its order.
DESIGN_NAMES = (
    "PICKPACK_DATABASE_URL",
    "PICKPACK_DATA_DIR",
    "PICKPACK_JWT_SECRET",
    "PICKPACK_JWKS_URL",
    "PICKPACK_ORDER_SERVICE_URL",
    "PICKPACK_ORDER_SERVICE_TOKEN",
)
# Names this service adds; documented in docs/reference/configuration.md.
EXTRA_NAMES = (
    "PICKPACK_ORDER_SERVICE_TIMEOUT_SECONDS",
    "PICKPACK_RECALC_BACKOFF_SECONDS",
    "PICKPACK_RECALC_MAX_BACKOFF_SECONDS",
    "PICKPACK_RECALC_MAX_ATTEMPTS",
    "PICKPACK_RECALC_POLL_SECONDS",
    # Identity (docs/reference/configuration.md).
    "PICKPACK_JWT_SECRET_FILE",
    "PICKPACK_ORDER_SERVICE_TOKEN_FILE",
    "PICKPACK_JWT_PRIVATE_KEY_FILE",
    "PICKPACK_JWT_ISSUER",
    "PICKPACK_JWT_AUDIENCE",
    "PICKPACK_TOKEN_LIFETIME_SECONDS",
    "PICKPACK_REVOCATION_CACHE_SECONDS",
    "PICKPACK_LOG_FORMAT",
    # Storage (docs/reference/configuration.md).
    "PICKPACK_COMPRESS_EVENTS",
    # Bounds on waiting for the database (docs/explanation/guarantees.md).
    "PICKPACK_DATABASE_CONNECT_TIMEOUT_SECONDS",
    "PICKPACK_DATABASE_TIMEOUT_SECONDS",
    "PICKPACK_WRITE_TIMEOUT_SECONDS",
    # Reads that may lag, from a replica (docs/explanation/guarantees.md).
    "PICKPACK_DATABASE_REPLICA_URL",
    "PICKPACK_DATABASE_REPLICA_MAX_LAG_SECONDS",
    # Every connection's bounds, before authentication (api/http_guard.py).
    "PICKPACK_MAX_HEADER_BYTES",
    "PICKPACK_HEADER_TIMEOUT_SECONDS",
    "PICKPACK_BODY_TIMEOUT_SECONDS",
    "PICKPACK_MAX_CONNECTIONS",
    # Stopping (docs/reference/configuration.md).
    "PICKPACK_DRAIN_SECONDS",
)
# A secret may come from a file instead (as container secrets are mounted): NAME_FILE.
SECRET_FILES = {
    "jwt_secret": "jwt_secret_file",
    "order_service_token": "order_service_token_file",
}
# Shown as **** by `pickpack config`; never printed or logged.
SECRET_NAMES = frozenset({"PICKPACK_JWT_SECRET", "PICKPACK_ORDER_SERVICE_TOKEN"})
MASK = "****"


class ConfigError(ValueError):
    """A configured value is wrong; the message names the variable (and no secret)."""


# The environment `Settings.from_env` reads; None means os.environ.
_environ: ContextVar[Mapping[str, str] | None] = ContextVar("pickpack_environ", default=None)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, reading the mapping `from_env` was given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _environ.get()
        if environ is None:
            return super()._load_env_vars()
        from pydantic_settings.sources.utils import parse_env_vars

        return parse_env_vars(
            environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


@contextmanager
def _reading(env: Mapping[str, str] | None) -> Iterator[None]:
    token = _environ.set(env)
    try:
        yield
    finally:
        _environ.reset(token)


class Settings(BaseSettings):
    """What the operator configured; every field has the default DESIGN.md gives.

    Each field is read from ``PICKPACK_<FIELD NAME>``. An empty value counts as unset.
    """

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    database_url: str | None = None
    data_dir: Path = Path("./.pickpack")
    jwt_secret: str | None = None
    jwks_url: str | None = None
    order_service_url: str | None = None
    order_service_token: str | None = None
    # Recalculation delivery (docs/explanation/recalculation.md); tests shorten the backoff.
    order_service_timeout_seconds: float = Field(default=30.0, gt=0)
    recalc_backoff_seconds: float = Field(default=1.0, ge=0)
    recalc_max_backoff_seconds: float = Field(default=300.0, ge=0)
    recalc_max_attempts: int = Field(default=10, ge=1)
    recalc_poll_seconds: float = Field(default=0.5, gt=0)
    # Identity: secrets from files, the service's own RS256 key, what tokens must carry.
    jwt_secret_file: Path | None = None
    order_service_token_file: Path | None = None
    jwt_private_key_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    token_lifetime_seconds: int = Field(default=14399, ge=1)  # Emporix's expires_in
    revocation_cache_seconds: float = Field(default=30.0, gt=0)
    # How the `pickpack` command writes its logs. cli.main reads the variable itself,
    # before any command builds Settings (logging is set up first); it is a field so
    # that `pickpack config` shows it and a wrong value is named like any other.
    log_format: Literal["auto", "text", "json"] = "auto"
    # Whether new events are stored compressed (ledger/adapters/compression.py); both
    # kinds are always read. False keeps new states readable with SQL alone.
    compress_events: bool = True
    # No request waits on the database past these (ledger/adapters/connection.py): each
    # connection attempt, per host of a multi-host URL (libpq's minimum is 2); each
    # round trip on an open connection (a frozen server answers nothing, and nothing on
    # the server's side can time out); a scan's wait for the commit that holds it.
    database_connect_timeout_seconds: int = Field(default=2, ge=2)
    database_timeout_seconds: float = Field(default=5.0, gt=0)
    write_timeout_seconds: float = Field(default=5.0, gt=0)
    # A streaming replica (or a libpq multi-host URL preferring standbys) for the reads
    # that may lag: GET /events, an order's history, the change feed's full pages and
    # exports. Unset, or the replica down or further behind than the bound: the primary.
    database_replica_url: str | None = None
    database_replica_max_lag_seconds: float = Field(default=5.0, gt=0)
    # Every connection's bounds, before authentication (api/http_guard.py,
    # docs/explanation/guarantees.md): the request head's size, how long a head and a
    # body may take to arrive, and how many connections are kept open.
    max_header_bytes: int = Field(default=65536, ge=4096, le=1048576)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=1000, ge=16)
    # On SIGTERM `serve` answers GET /ready with 503 and keeps serving this long, so a
    # load balancer stops sending before the socket closes (api/drain.py).
    drain_seconds: float = Field(default=5.0, ge=0, le=300)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment only: no .env file or secrets directory is read implicitly.
        return (init_settings, _Environment(settings_cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (only it), or from os.environ; ConfigError if a value is wrong."""
        try:
            with _reading(env):
                return cls()
        except ValidationError as exc:
            raise ConfigError(_describe(exc, os.environ if env is None else env)) from None

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        """NAME_FILE's content (one trailing newline dropped) becomes NAME's value."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, file_name in SECRET_FILES.items():
            path = data.get(file_name)
            if path in (None, ""):
                continue
            var, file_var = PREFIX + name.upper(), PREFIX + file_name.upper()
            if data.get(name) not in (None, ""):
                raise ValueError(f"{var} and {file_var} are both set: set only one of them")
            try:
                text = Path(path).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise ValueError(f"{file_var}: cannot read {path}: {reason}") from None
            value = text.removesuffix("\n").removesuffix("\r")
            if not value.strip():
                raise ValueError(f"{file_var}: {path} is empty")
            data[name] = value
        return data

    @model_validator(mode="after")
    def _replica_of_a_configured_database(self) -> Settings:
        if self.database_replica_url and not self.database_url:
            raise ValueError(
                "PICKPACK_DATABASE_REPLICA_URL is set but PICKPACK_DATABASE_URL is not: "
                "a replica needs the primary it follows (the embedded database has none)"
            )
        return self

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()

    @field_validator("database_url", "database_replica_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        return None if value is None else check_database_url(value)

    @field_validator("jwks_url", "order_service_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        try:
            parts.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError:
            raise ValueError("the port is not a number") from None
        return value.rstrip("/") or None

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name -> environment variable name, in declaration order."""
        return {name: PREFIX + name.upper() for name in cls.model_fields}

    def effective(self) -> dict[str, str | None]:
        """Each variable's effective value, secrets and passwords masked (None: unset)."""
        shown: dict[str, str | None] = {}
        for name, var in self.env_names().items():
            value = getattr(self, name)
            if value is None:
                shown[var] = None
            elif var in SECRET_NAMES:
                shown[var] = MASK
            elif isinstance(value, str):
                shown[var] = mask_password(value)
            else:
                shown[var] = env_spelling(value)
        return shown


def env_spelling(value: object) -> str:
    """A value as an operator writes it in the environment and the configuration
    reference does: `true`/`false`, `30` for a whole number of seconds, `0.5` otherwise
    (Python's str would show `True` and `30.0`, which the reference never writes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_database_url(value: str) -> str:
    """A PostgreSQL URL (or libpq key=value string) that libpq can parse, port numeric."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    if "://" in value and urlsplit(value).scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql:// URL")
    try:
        params = conninfo_to_dict(value)
    except ProgrammingError:
        raise ValueError("not a PostgreSQL connection URL") from None
    port = str(params.get("port") or "")
    if port and not all(p.isdigit() for p in port.split(",")):
        raise ValueError("the port is not a number")
    return value


def mask_password(value: str) -> str:
    """The URL (or key=value conninfo) with its password replaced by ****."""
    if "://" in value:
        parts = urlsplit(value)
        if parts.password is None:
            return value
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
    if "password" in value:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            params = conninfo_to_dict(value)
        except Exception:
            return MASK
        if "password" in params:
            params["password"] = MASK
        return make_conninfo("", **params)
    return value


def _describe(exc: ValidationError, env: Mapping[str, str]) -> str:
    """One line naming each wrong variable, its value (unless secret) and what is wrong."""
    fields: dict[str, FieldInfo] = Settings.model_fields
    names = Settings.env_names()
    problems = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if not loc:  # a rule over several variables: its message names them
            problems.append(msg)
            continue
        field = str(loc[0])
        var = names.get(field, field if field.startswith(PREFIX) else PREFIX + field.upper())
        raw: Any = env.get(var)
        if field in fields and var not in SECRET_NAMES and raw is not None:
            problems.append(f"{var}={mask_password(str(raw))!r}: {msg}")
        else:
            problems.append(f"{var}: {msg}")
    return "invalid configuration: " + "; ".join(problems)
