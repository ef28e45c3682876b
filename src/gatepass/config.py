"""Settings: a TOML file plus environment overrides, validated once at start-up.

Precedence, lowest first: defaults, the TOML file (`--config` or `GATEPASS_CONFIG`), then the
environment (`GATEPASS_DATABASE_URL`, `GATEPASS_SECRET_KEY`, `GATEPASS_PUBLIC_URL`,
`GATEPASS_REDIS_URL`). Any string value in the file may be written `env:NAME` to read it from
the environment, which keeps secrets out of the file.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

DEV_SECRET_KEY = "gatepass-development-secret-do-not-use-in-production"
DEFAULT_CORS_HEADERS = [
    "Content-Type",
    "Authorization",
    "X-Requested-With",
    "X-Stainless-Timeout",
    "X-Api-Key",
]
ENV_OVERRIDES = {
    "GATEPASS_DATABASE_URL": "database_url",
    "GATEPASS_SECRET_KEY": "secret_key",
    "GATEPASS_PUBLIC_URL": "public_url",
    "GATEPASS_REDIS_URL": "redis_url",
}
MIB = 1024 * 1024


class ConfigError(Exception):
    """The configuration is missing, unreadable or invalid; the message says which and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorsSettings(_Strict):
    allow_origins: list[str] = []
    allow_headers: list[str] = Field(default_factory=lambda: list(DEFAULT_CORS_HEADERS))
    allow_credentials: bool = False
    max_age: int = 600  # seconds


class SignInSettings(_Strict):
    """Lifetimes and knobs of interactive sign-in (all durations in seconds)."""

    access_token_ttl: Annotated[int, Field(ge=60, le=86400)] = 900  # id_token too
    refresh_token_idle_ttl: Annotated[int, Field(gt=0)] = 14 * 86400
    refresh_token_absolute_ttl: Annotated[int, Field(gt=0)] = 90 * 86400
    authorization_code_ttl: Annotated[int, Field(ge=10, le=600)] = 60
    login_ttl: Annotated[int, Field(ge=60, le=3600)] = 600  # to finish signing in at the IdP
    idp_recheck_grace: Annotated[int, Field(ge=0)] = 3600  # an IdP outage keeps sessions this long
    signing_key_grace: Annotated[int, Field(ge=0)] = 86400  # rotated keys stay published
    max_groups: Annotated[int, Field(gt=0)] = 100  # a list this long may have been truncated
    clock_skew: Annotated[int, Field(ge=0, le=300)] = 60  # leeway for IdP token times
    device_code_ttl: Annotated[int, Field(ge=60, le=1800)] = 600  # RFC 8628 §3.2 expires_in
    device_poll_interval: Annotated[int, Field(ge=1, le=60)] = 5  # RFC 8628 §3.2 interval


class AdminSettings(_Strict):
    """The security team's surface: admin pages and API, `/logs`."""

    session_ttl: Annotated[int, Field(ge=300, le=7 * 86400)] = 8 * 3600  # seconds, absolute
    page_size: Annotated[int, Field(ge=1, le=1000)] = 50  # default items per API page


class LogsSettings(_Strict):
    """Request logs: what is kept of each request, and for how long."""

    # off: no bodies; metadata (default): no bodies either, the row only; full: also the
    # request's messages and the response text (credentials redacted), searchable in /logs.
    # The metadata row is always written: budgets are counted from it.
    capture: Literal["off", "metadata", "full"] = "metadata"
    retention_days: Annotated[int, Field(ge=0)] = 90  # 0 keeps logs forever
    purge_interval: Annotated[float, Field(gt=0)] = 3600.0  # seconds between retention purges
    max_body_chars: Annotated[int, Field(gt=0)] = 200_000  # per request and per response


class MetricsSettings(_Strict):
    """`/metrics` (Prometheus); open unless a token is set."""

    token: SecretStr | None = None  # scrapers then send Authorization: Bearer <token>


class PriceConfig(_Strict):
    """A model's price in USD per million tokens (multiples of $0.001)."""

    input: Annotated[Decimal, Field(ge=0)]
    output: Annotated[Decimal, Field(ge=0)]
    cache_write: Annotated[Decimal, Field(ge=0)] | None = None  # default: 1.25 x input
    cache_read: Annotated[Decimal, Field(ge=0)] | None = None  # default: 0.1 x input

    @field_validator("input", "output", "cache_write", "cache_read")
    @classmethod
    def _thousandths(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and (value * 1000) % 1 != 0:
            raise ValueError("prices are USD per million tokens in steps of 0.001")
        return value


class LimitsSettings(_Strict):
    """Budgets and rate limits: where counters live and what tokens cost."""

    backend: Literal["auto", "memory", "redis"] = "auto"  # auto: redis when redis_url is set
    redis_prefix: str = "gatepass:"
    redis_timeout: Annotated[float, Field(gt=0)] = 0.5  # seconds per Redis command
    redis_connections: Annotated[int, Field(ge=1)] = 32  # per process; more requests queue
    redis_retry_interval: Annotated[float, Field(ge=0)] = 1.0  # seconds between tries when down
    on_redis_error: Literal["fail_closed", "local"] = "fail_closed"
    lease: Annotated[float, Field(gt=0)] = 900.0  # seconds a reservation outlives a lost request
    help: str = "ask your administrator to raise it"  # the "what to do" of a budget refusal
    prices: dict[str, PriceConfig] = {}  # model id or id prefix → price; merged over defaults
    default_price: PriceConfig | None = None  # unknown models (default: the dearest family's)


class ProviderConfig(_Strict):
    """A provider declared in the config file; synced into the store at start-up."""

    name: str
    kind: Literal["anthropic"] = "anthropic"
    base_url: str
    api_key: SecretStr
    timeout: float = 600.0  # seconds, whole request
    extra_headers: dict[str, str] = {}


class ModelConfig(_Strict):
    """A model route declared in the config file; synced into the store at start-up."""

    id: str
    provider: str
    upstream_model: str | None = None
    display_name: str | None = None
    aliases: list[str] = []


class Settings(_Strict):
    environment: Literal["development", "production"] = "production"
    database_url: str = "sqlite+aiosqlite:///gatepass.db"
    secret_key: SecretStr = SecretStr("")
    public_url: str = "http://127.0.0.1:8080"
    redis_url: str | None = None

    max_body_bytes: Annotated[int, Field(gt=0)] = 32 * MIB
    ping_interval: Annotated[float, Field(gt=0)] = 15.0  # seconds of upstream silence
    upstream_connect_timeout: Annotated[float, Field(gt=0)] = 10.0  # seconds
    key_cache_ttl: Annotated[float, Field(ge=0)] = 2.0  # seconds a key lookup is reused
    log_batch_size: Annotated[int, Field(gt=0)] = 500
    log_flush_interval: Annotated[float, Field(gt=0)] = 0.25  # seconds
    drain_timeout: Annotated[float, Field(ge=0)] = 30.0  # seconds open streams get on shutdown

    cors: CorsSettings = CorsSettings()
    sign_in: SignInSettings = SignInSettings()
    limits: LimitsSettings = LimitsSettings()
    admin: AdminSettings = AdminSettings()
    logs: LogsSettings = LogsSettings()
    metrics: MetricsSettings = MetricsSettings()
    log_format: Literal["text", "json"] = "text"  # the process's own logs; json: one per line
    providers: list[ProviderConfig] = []
    models: list[ModelConfig] = []

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def issuer(self) -> str:
        """Gatepass's OIDC issuer identifier: the public URL, no trailing slash."""
        return self.public_url

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def check_secret(self) -> None:
        """Refuse to run without a secret, or with the development one outside development."""
        secret = self.secret_key.get_secret_value()
        if not secret:
            raise ConfigError("secret_key is not set: set GATEPASS_SECRET_KEY (32+ random chars)")
        if self.environment == "production" and secret == DEV_SECRET_KEY:
            raise ConfigError("the development secret_key must not be used in production")
        if len(secret) < 16:
            raise ConfigError("secret_key is too short: use at least 32 random characters")


def resolve_env_refs(value: Any, where: str) -> Any:
    """Replace `env:NAME` strings with the variable's value, failing loudly when unset."""
    if isinstance(value, dict):
        return {k: resolve_env_refs(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_refs(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"{where.lstrip('.')}: environment variable {name} is not set")
        return os.environ[name]
    return value


def describe_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(
    path: str | Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the TOML file (if any), apply environment and explicit overrides, and validate."""
    env = os.environ if environ is None else environ
    path = path or env.get("GATEPASS_CONFIG") or None
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        data = resolve_env_refs(data, "")
    for variable, field in ENV_OVERRIDES.items():
        if env.get(variable):
            data[field] = env[variable]
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc
