"""Gatepass's own JWTs: minting id_tokens and access tokens, and verifying either kind.

Claims (both kinds): `iss`, `sub` (the user's public id), `aud`, `iat`, `exp`, `auth_time`,
`sid` (the token family, i.e. the sign-in session, revocable), `gatepass_key_id` (the id of
the virtual key the user was mapped to), `email`.
- id_token (OIDC Core §2): header `typ: JWT`; `aud` = `azp` = the client id; `name`,
  `groups`, `nonce` (when the authorization request had one), `jti`.
- access token (RFC 9068): header `typ: at+jwt`; `aud` = the resource `{issuer}/anthropic`;
  `client_id`, `scope`, `jti`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from joserfc import jwt
from joserfc.errors import JoseError

from gatepass.oauth.keys import ALGORITHM, SigningKeys

KEY_ID_CLAIM = "gatepass_key_id"
FAMILY_CLAIM = "sid"
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1
ID_TOKEN_TYPE = "JWT"
LEEWAY = 10  # seconds of clock difference tolerated between replicas
MAX_TOKEN_LENGTH = 8192  # characters; ours are about 1.5 kB


def resource_audience(issuer: str) -> str:
    """The `aud` of Gatepass access tokens: the Anthropic API it fronts."""
    return issuer + "/anthropic"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What the proxy needs from a verified Gatepass token (id_token or access token)."""

    subject: str  # the user's public_id
    key_id: int
    family_id: str  # the sign-in session (refresh-token family); revocable
    client_id: str
    expires_at: int  # Unix seconds
    token_use: Literal["id", "access"]
    email: str | None = None
    scope: str = ""  # access tokens only
    auth_time: int | None = None  # Unix seconds


@dataclass(frozen=True, slots=True)
class Grant:
    """Who a set of tokens is for: the inputs shared by the id_token and the access token."""

    client_id: str
    subject: str
    key_id: int
    family_id: str
    scope: str
    auth_time: int  # Unix seconds
    email: str | None
    name: str | None
    groups: tuple[str, ...]
    nonce: str | None = None


class TokenMinter:
    """Signs id_tokens and access tokens with the active key."""

    def __init__(self, keys: SigningKeys, issuer: str, ttl: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.ttl = ttl  # seconds, both kinds

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        """Sign arbitrary claims with the active key (tests use this to forge near-misses)."""
        kid, key = self.keys.signer
        header = {"alg": ALGORITHM, "kid": kid, "typ": typ}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])

    def _common(self, grant: Grant, now: int) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.subject,
            "iat": now,
            "exp": now + self.ttl,
            "auth_time": grant.auth_time,
            FAMILY_CLAIM: grant.family_id,
            KEY_ID_CLAIM: grant.key_id,
        }
        if grant.email is not None:
            claims["email"] = grant.email
        return claims

    def id_token(self, grant: Grant, now: int | None = None) -> str:
        """OIDC Core §2: `aud` is the client id."""
        now = int(time.time()) if now is None else now
        claims = self._common(grant, now)
        claims.update(
            aud=grant.client_id,
            azp=grant.client_id,
            groups=list(grant.groups),
            jti=secrets.token_urlsafe(16),  # each refresh yields a distinct token, same second too
        )
        if grant.name is not None:
            claims["name"] = grant.name
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce  # OIDC Core §3.1.3.6
        return self.sign(claims, ID_TOKEN_TYPE)

    def access_token(self, grant: Grant, now: int | None = None) -> str:
        """RFC 9068 §2.2: `aud` is the resource, `client_id` and `jti` present."""
        now = int(time.time()) if now is None else now
        claims = self._common(grant, now)
        claims.update(
            aud=resource_audience(self.issuer),
            client_id=grant.client_id,
            scope=grant.scope,
            jti=secrets.token_urlsafe(16),
        )
        return self.sign(claims, ACCESS_TOKEN_TYPE)


def _header(token: str) -> dict[str, Any] | None:
    segment = token.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def verify_token(
    keys: SigningKeys, issuer: str, token: str, now: int | None = None
) -> TokenClaims | None:
    """The claims of a Gatepass JWT whose signature, `iss`, `aud`, `typ` and `exp` hold."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return None
    header = _header(token)
    # RFC 8725 §3.1: our own algorithm only, never `none` or an HMAC keyed with a public key.
    if header is None or header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
        return None
    key = await keys.verifying_key_or_reload(header["kid"])
    if key is None:
        return None
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError):
        return None
    now = int(time.time()) if now is None else now
    expires_at = _int(claims.get("exp"))
    if claims.get("iss") != issuer or expires_at is None or expires_at + LEEWAY <= now:
        return None  # RFC 7519 §4.1.1, §4.1.4
    issued_at = _int(claims.get("iat"))
    if issued_at is None or issued_at - LEEWAY > now:
        return None
    subject, family_id = claims.get("sub"), claims.get(FAMILY_CLAIM)
    key_id = _int(claims.get(KEY_ID_CLAIM))
    if not isinstance(subject, str) or not isinstance(family_id, str) or key_id is None:
        return None
    audience = claims.get("aud")
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    auth_time = _int(claims.get("auth_time"))
    # The header `typ` and the audience must agree, so that neither kind passes for the other
    # (RFC 9068 §4, RFC 8725 §3.11).
    if header.get("typ") == ACCESS_TOKEN_TYPE:
        client_id, scope = claims.get("client_id"), claims.get("scope", "")
        if audience != resource_audience(issuer) or not isinstance(client_id, str):
            return None
        return TokenClaims(
            subject,
            key_id,
            family_id,
            client_id,
            expires_at,
            "access",
            email,
            scope if isinstance(scope, str) else "",
            auth_time,
        )
    if header.get("typ") == ID_TOKEN_TYPE:
        # OIDC Core §3.1.3.7: a single audience, the client it was issued to.
        if not isinstance(audience, str) or audience == resource_audience(issuer):
            return None
        if claims.get("azp", audience) != audience:
            return None
        return TokenClaims(
            subject, key_id, family_id, audience, expires_at, "id", email, "", auth_time
        )
    return None
