"""Misbehaviour switches: each field makes the provider commit exactly one named defect."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Values the defects use, so tests and the README can name them.
WRONG_ISSUER = "https://wrong-issuer.invalid"
WRONG_AUDIENCE = "not-the-client"
OTHER_AUDIENCE = "another-audience"
WRONG_NONCE = "not-the-nonce-you-sent"
UNKNOWN_KID = "unknown-kid"
TRUNCATED_GROUP_COUNT = 150  # groups the user appears to hold under `groups_truncated`
OKTA_GROUP_LIMIT = 100  # Okta stops listing groups here
OVERAGE_GROUP_COUNT = 250  # groups the user appears to hold under `groups_overage`
ENTRA_GROUP_LIMIT = 200  # Entra ID replaces the claim with overage markers above this
CLOCK_SHIFT = 3600  # seconds by which `expired` and `future_iat` move the token's times


@dataclass(frozen=True)
class Switches:
    """All off by default; `IdpConfig.switches`, `idp.set(...)` or `POST /_control/switches`."""

    wrong_iss: bool = False
    """ID token `iss` is WRONG_ISSUER."""
    wrong_aud: bool = False
    """ID token `aud` is WRONG_AUDIENCE instead of the client id."""
    extra_aud: bool = False
    """ID token `aud` is [client_id, OTHER_AUDIENCE] with `azp` = client_id (valid, but wider)."""
    azp_mismatch: bool = False
    """ID token `aud` is [client_id, OTHER_AUDIENCE] and `azp` is OTHER_AUDIENCE."""
    expired: bool = False
    """`exp` is CLOCK_SHIFT seconds in the past (`iat` one lifetime before): arrives expired."""
    future_iat: bool = False
    """`iat` is CLOCK_SHIFT seconds in the future (`exp` one lifetime later)."""
    bad_signature: bool = False
    """Properly formed token whose signature does not verify (one byte flipped)."""
    alg_none: bool = False
    """Header `alg: none` and an empty signature."""
    hs256_public_key: bool = False
    """Header `alg: HS256`, HMAC keyed with the RSA public key's PEM (key confusion)."""
    unknown_kid: bool = False
    """Signed with the real key but the header names kid UNKNOWN_KID, absent from the JWKS."""
    no_kid: bool = False
    """Signed with the real key and no `kid` in the header, while the JWKS holds several keys."""
    missing_nonce: bool = False
    """ID token has no `nonce` even though the request sent one."""
    wrong_nonce: bool = False
    """ID token `nonce` is WRONG_NONCE."""
    missing_sub: bool = False
    """ID token (and userinfo) have no `sub`."""
    missing_groups: bool = False
    """No groups claim anywhere, even when the `groups` scope was granted."""
    groups_truncated: bool = False
    """User appears to hold 150 groups (filler first); tokens list only the first 100 (Okta)."""
    groups_overage: bool = False
    """User appears to hold 250 groups; no groups claim, Entra `_claim_names`/`_claim_sources`."""
    unverified_email: bool = False
    """`email_verified` is false in the ID token and userinfo."""
    userinfo_sub_mismatch: bool = False
    """Userinfo returns a `sub` different from the ID token's."""
    discovery_issuer_mismatch: bool = False
    """Discovery document's `issuer` is WRONG_ISSUER (the URL it was fetched from differs)."""
    missing_auth_response_iss: bool = False
    """Authorization response (callback) carries no `iss` parameter (RFC 9207)."""
    wrong_auth_response_iss: bool = False
    """Authorization response `iss` is WRONG_ISSUER (mix-up attack)."""
    callback_error: str | None = None
    """Authorization answers at once with `error=<value>` (e.g. `access_denied`), `state`, `iss`."""
    token_delay: float = 0.0
    """Seconds the token endpoint waits before answering (a slow IdP)."""
    token_failure_status: int | None = None
    """Token endpoint fails with this HTTP status and `{"error": "temporarily_unavailable"}`."""
    apply_to_access_tokens: bool = False
    """Token-shape defects (iss, aud, azp, times, signature, kid) also hit JWT access tokens."""

    def changed(self, **values: Any) -> Switches:
        """A copy with `values` applied; unknown names are a `ValueError`, not ignored."""
        unknown = sorted(set(values) - set(names()))
        if unknown:
            raise ValueError(f"unknown switches: {', '.join(unknown)}")
        for name, value in values.items():
            _check(name, value)
        return dataclasses.replace(self, **values)

    def active(self) -> dict[str, Any]:
        """The switches that differ from their defaults."""
        default = Switches()
        return {
            name: getattr(self, name)
            for name in names()
            if getattr(self, name) != getattr(default, name)
        }

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def names() -> list[str]:
    return [f.name for f in dataclasses.fields(Switches)]


def _check(name: str, value: Any) -> None:
    kind = str({f.name: f.type for f in dataclasses.fields(Switches)}[name])
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    elif kind == "int | None":
        ok = value is None or (isinstance(value, int) and 400 <= value <= 599)
    else:  # str | None
        ok = value is None or (isinstance(value, str) and value.isascii() and value != "")
    if not ok:
        raise ValueError(f"switch {name}: invalid value {value!r} for {kind}")


def switches_from_mapping(values: Mapping[str, Any]) -> Switches:
    return Switches().changed(**values)
