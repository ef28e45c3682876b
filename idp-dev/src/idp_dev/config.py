"""Users, clients and provider settings, read once from TOML or JSON and validated at start-up."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from idp_dev.switches import Switches, switches_from_mapping

T = TypeVar("T")
AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
SigningAlg = Literal["RS256", "ES256"]

SIGNING_ALGS: tuple[SigningAlg, ...] = ("RS256", "ES256")
AUTH_METHODS: tuple[AuthMethod, ...] = ("client_secret_basic", "client_secret_post", "none")


class ConfigError(ValueError):
    """The users file or a runtime change describes something the provider cannot serve."""


@dataclass(frozen=True)
class User:
    """A person who can sign in; `claims` holds any extra claims to release."""

    email: str
    password: str
    sub: str = ""
    name: str = ""
    email_verified: bool = True
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)
    disabled: bool = False

    def __post_init__(self) -> None:
        if not self.email or "@" not in self.email:
            raise ConfigError(f"user email {self.email!r} is not an address")
        if not self.sub:
            # A stable default subject that is deliberately not the email (identity is (iss, sub)).
            object.__setattr__(self, "sub", "u-" + self.email.split("@")[0])
        if not self.name:
            object.__setattr__(self, "name", self.email.split("@")[0].title())
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "claims", dict(self.claims))


@dataclass(frozen=True)
class Client:
    """A relying party; `client_secret=None` makes it a public client (PKCE, no secret)."""

    client_id: str
    redirect_uris: tuple[str, ...]
    client_secret: str | None = None
    loopback_any_port: bool = False
    require_pkce: bool = True
    require_consent: bool = False
    auth_methods: tuple[AuthMethod, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    signing_alg: SigningAlg | None = None
    access_token_audience: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        object.__setattr__(self, "post_logout_redirect_uris", tuple(self.post_logout_redirect_uris))
        methods = tuple(self.auth_methods)
        if not methods:
            methods = (
                ("none",)
                if self.client_secret is None
                else ("client_secret_basic", "client_secret_post")
            )
        for method in methods:
            if method not in AUTH_METHODS:
                raise ConfigError(f"client {self.client_id!r}: unknown auth method {method!r}")
            if (method == "none") != (self.client_secret is None):
                raise ConfigError(
                    f"client {self.client_id!r}: auth method {method!r} does not fit "
                    "a client " + ("without" if self.client_secret is None else "with") + " secret"
                )
        object.__setattr__(self, "auth_methods", methods)
        if self.signing_alg is not None and self.signing_alg not in SIGNING_ALGS:
            raise ConfigError(f"client {self.client_id!r}: unsupported alg {self.signing_alg!r}")
        if not self.redirect_uris:
            raise ConfigError(f"client {self.client_id!r} has no redirect_uris")

    @property
    def is_public(self) -> bool:
        return self.client_secret is None


@dataclass(frozen=True)
class IdpConfig:
    """Everything the provider needs at start-up; `issuer=None` means `http://127.0.0.1:<port>`."""

    users: tuple[User, ...] = ()
    clients: tuple[Client, ...] = ()
    issuer: str | None = None
    groups_claim: str = "groups"
    always_include_groups: bool = False
    access_token_audience: str = "gatepass"
    signing_alg: SigningAlg = "RS256"
    code_ttl: int = 60  # seconds
    id_token_ttl: int = 3600  # seconds
    access_token_ttl: int = 3600  # seconds
    refresh_token_ttl: int = 86400  # seconds
    session_ttl: int = 43200  # seconds
    key_grace_period: int = 3600  # seconds an old key stays in the JWKS after rotation
    switches: Switches = field(default_factory=Switches)

    def __post_init__(self) -> None:
        object.__setattr__(self, "users", tuple(self.users))
        object.__setattr__(self, "clients", tuple(self.clients))
        if self.signing_alg not in SIGNING_ALGS:
            raise ConfigError(f"unsupported signing_alg {self.signing_alg!r}")
        if not self.groups_claim:
            raise ConfigError("groups_claim must not be empty")
        _unique("user email", [u.email.lower() for u in self.users])
        _unique("user sub", [u.sub for u in self.users])
        _unique("client_id", [c.client_id for c in self.clients])
        if self.issuer is not None:
            object.__setattr__(self, "issuer", self.issuer.rstrip("/"))

    @classmethod
    def demo(cls, *, redirect_uris: Sequence[str] | None = None, **overrides: Any) -> IdpConfig:
        """Two users and a confidential `gatepass` client: what `gatepass dev` starts."""
        uris = tuple(redirect_uris) if redirect_uris is not None else DEMO_REDIRECT_URIS
        return cls(
            users=(
                User(
                    sub="alice",
                    email="alice@corp.example",
                    name="Alice Example",
                    password="alice-password",
                    groups=("engineering", "admins"),
                ),
                User(
                    sub="bob",
                    email="bob@corp.example",
                    name="Bob Example",
                    password="bob-password",
                    groups=("sales",),
                ),
            ),
            clients=(
                Client(
                    client_id="gatepass",
                    client_secret="gatepass-dev-secret",
                    redirect_uris=uris,
                    loopback_any_port=True,
                    post_logout_redirect_uris=tuple(_origin_root(u) for u in uris),
                ),
            ),
            **overrides,
        )


DEMO_REDIRECT_URIS: tuple[str, ...] = (
    "http://127.0.0.1/auth/callback",
    "http://localhost/auth/callback",
)


def _origin_root(uri: str) -> str:
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/"


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"duplicate {what} {value!r}")
        seen.add(value)


def load_config(path: str | Path, **overrides: Any) -> IdpConfig:
    """Read a `.toml` or `.json` users file; unknown keys are errors, not silently ignored."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    return config_from_mapping(data, **overrides)


def config_from_mapping(data: Mapping[str, Any], **overrides: Any) -> IdpConfig:
    """Build an `IdpConfig` from parsed TOML/JSON, checking every key and type."""
    data = dict(data)
    users = [build(User, u, "users[]") for u in data.pop("users", [])]
    clients = [build(Client, c, "clients[]") for c in data.pop("clients", [])]
    try:
        switches = switches_from_mapping(data.pop("switches", {}))
    except ValueError as exc:
        raise ConfigError(f"switches: {exc}") from exc
    settings = {**data, **overrides}
    return build(
        IdpConfig, {**settings, "users": users, "clients": clients, "switches": switches}, ""
    )


def build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    """Instantiate a dataclass from a mapping, refusing unknown keys and wrong scalar types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown keys {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        expected = str(fields[name].type)
        _check_type(f"{where}.{name}".lstrip("."), expected, value)
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from exc


def _check_type(where: str, expected: str, value: Any) -> None:
    """A light check of the annotation text; enough to catch typos in a hand-written file."""
    if value is None and "None" in expected:
        return
    if expected.startswith("bool"):
        ok = isinstance(value, bool)
    elif expected.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected.startswith("float"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif expected.startswith("tuple"):
        ok = isinstance(value, list | tuple)
    elif expected.startswith(("str", "SigningAlg")):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{where}: expected {expected}, got {value!r}")
