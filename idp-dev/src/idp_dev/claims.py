"""What the provider says about a user: ID token, access token and userinfo claims."""

from __future__ import annotations

from typing import Any

from authlib.oidc.core.util import create_half_hash  # type: ignore[import-untyped, unused-ignore]

from idp_dev.config import Client, User
from idp_dev.provider import Provider
from idp_dev.switches import (
    CLOCK_SHIFT,
    ENTRA_GROUP_LIMIT,
    OKTA_GROUP_LIMIT,
    OTHER_AUDIENCE,
    OVERAGE_GROUP_COUNT,
    TRUNCATED_GROUP_COUNT,
    WRONG_AUDIENCE,
    WRONG_ISSUER,
    WRONG_NONCE,
    Switches,
)

OVERAGE_SOURCE = "src1"


def all_groups(user: User, switches: Switches) -> list[str]:
    """The user's memberships as the IdP sees them, padded by the overage switches."""
    groups = list(user.groups)
    target = 0
    if switches.groups_overage:
        target = OVERAGE_GROUP_COUNT
    elif switches.groups_truncated:
        target = TRUNCATED_GROUP_COUNT
    filler = [f"filler-{n:03d}" for n in range(1, max(0, target - len(groups)) + 1)]
    # Filler first, so truncation drops the user's real groups: the defect bites.
    return filler + groups


def profile_claims(
    provider: Provider, user: User, scopes: tuple[str, ...], switches: Switches
) -> dict[str, Any]:
    """Claims released by scope (OIDC Core §5.4), shared by the ID token and userinfo."""
    claims: dict[str, Any] = {}
    if not switches.missing_sub:
        claims["sub"] = user.sub
    if "profile" in scopes:
        claims["name"] = user.name
        claims.update(user.claims)
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified and not switches.unverified_email
    wants_groups = "groups" in scopes or provider.config.always_include_groups
    if wants_groups and not switches.missing_groups:
        claims.update(group_claims(provider, user, switches))
    return claims


def group_claims(provider: Provider, user: User, switches: Switches) -> dict[str, Any]:
    groups = all_groups(user, switches)
    if switches.groups_overage and len(groups) > ENTRA_GROUP_LIMIT:
        # Entra ID: the claim is replaced by a pointer to where the full list lives.
        name = provider.config.groups_claim
        endpoint = f"{provider.issuer}/users/{user.sub}/groups"
        return {
            "_claim_names": {name: OVERAGE_SOURCE},
            "_claim_sources": {OVERAGE_SOURCE: {"endpoint": endpoint}},
        }
    if switches.groups_truncated:
        groups = groups[:OKTA_GROUP_LIMIT]
    return {provider.config.groups_claim: groups}


def _times(now: int, ttl: int, switches: Switches) -> tuple[int, int]:
    if switches.expired:
        exp = now - CLOCK_SHIFT
        return exp - ttl, exp
    if switches.future_iat:
        iat = now + CLOCK_SHIFT
        return iat, iat + ttl
    return now, now + ttl


def _envelope(provider: Provider, audience: str, ttl: int, switches: Switches) -> dict[str, Any]:
    """The claims every JWT carries, with the token-shape defects applied."""
    iat, exp = _times(provider.clock.now(), ttl, switches)
    aud: str | list[str] = audience
    claims: dict[str, Any] = {"iss": provider.issuer}
    if switches.wrong_iss:
        claims["iss"] = WRONG_ISSUER
    if switches.wrong_aud:
        aud = WRONG_AUDIENCE
    elif switches.extra_aud or switches.azp_mismatch:
        aud = [audience, OTHER_AUDIENCE]
    claims["aud"] = aud
    claims["iat"] = iat
    claims["exp"] = exp
    return claims


def id_token_claims(
    provider: Provider,
    *,
    user: User,
    client: Client,
    scopes: tuple[str, ...],
    nonce: str | None,
    auth_time: int,
    access_token: str,
    switches: Switches,
) -> dict[str, Any]:
    """OIDC Core §2 ID token, with each active switch bending exactly its own claim."""
    claims = _envelope(provider, client.client_id, provider.config.id_token_ttl, switches)
    claims["auth_time"] = auth_time
    if switches.extra_aud:
        claims["azp"] = client.client_id
    if switches.azp_mismatch:
        claims["azp"] = OTHER_AUDIENCE
    if switches.wrong_nonce:
        claims["nonce"] = WRONG_NONCE
    elif nonce is not None and not switches.missing_nonce:
        claims["nonce"] = nonce
    claims["at_hash"] = create_half_hash(access_token, provider.signing_alg(client)).decode()
    claims.update(profile_claims(provider, user, scopes, switches))
    return claims


def access_token_claims(
    provider: Provider,
    *,
    user: User,
    client: Client,
    scopes: tuple[str, ...],
    jti: str,
    switches: Switches,
) -> dict[str, Any]:
    """An RFC 9068 JWT access token; shape defects apply only with `apply_to_access_tokens`."""
    audience = client.access_token_audience or provider.config.access_token_audience
    shape = switches if switches.apply_to_access_tokens else Switches()
    claims = _envelope(provider, audience, provider.config.access_token_ttl, shape)
    if shape.azp_mismatch:
        claims["azp"] = OTHER_AUDIENCE
    claims.update(
        {
            "sub": user.sub,
            "client_id": client.client_id,
            "jti": jti,
            "scope": " ".join(scopes),
        }
    )
    if "email" in scopes:
        claims["email"] = user.email
    wants_groups = "groups" in scopes or provider.config.always_include_groups
    if wants_groups and not switches.missing_groups:
        claims.update(group_claims(provider, user, switches))
    return claims


def userinfo_claims(
    provider: Provider, user: User, scopes: tuple[str, ...], switches: Switches
) -> dict[str, Any]:
    claims = profile_claims(provider, user, scopes, switches)
    if switches.userinfo_sub_mismatch:
        claims["sub"] = f"{user.sub}-other"
    return claims
