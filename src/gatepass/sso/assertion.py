"""From an IdP token response to a `Person`: the ID token validated, completed from userinfo
when it lacks groups, the email checked, the groups read.

Used at sign-in (the ID token is required, with our nonce) and on refresh (the ID token is
optional, OIDC Core §12.2; without one, userinfo is asked, and must name the same subject).
"""

from __future__ import annotations

import time
from typing import Any

from gatepass.sso.claims import Person, check_email, display_name, extract_groups
from gatepass.sso.discovery import Directory, ProviderMetadata
from gatepass.sso.errors import LoginError
from gatepass.sso.http import IdpHttp
from gatepass.sso.id_token import Expected, validate_id_token
from gatepass.store.identity import IdpConnection


async def userinfo(
    http: IdpHttp, metadata: ProviderMetadata, *, access_token: str, subject: str
) -> dict[str, Any]:
    """Userinfo claims; OIDC Core §5.3.2: its `sub` must be the ID token's, else refuse."""
    assert metadata.userinfo_endpoint is not None
    claims = await http.get_json(
        metadata.userinfo_endpoint,
        what="userinfo",
        headers={"authorization": f"Bearer {access_token}"},
    )
    if claims.get("sub") != subject:
        raise LoginError(
            "userinfo_subject",
            "The identity provider's answer failed Gatepass's security checks.",
            hint="Ask your administrator to check this identity provider's settings.",
            detail="userinfo sub differs from the ID token's",
        )
    return claims


async def read_person(
    token: dict[str, Any],
    *,
    http: IdpHttp,
    directory: Directory,
    metadata: ProviderMetadata,
    idp: IdpConnection,
    expected: Expected,
    max_groups: int,
) -> Person | None:
    """The person the token response describes; None on a refresh that says nothing new."""
    id_token = token.get("id_token")
    access_token = token.get("access_token")
    claims: dict[str, Any] = {}
    if isinstance(id_token, str):
        claims = await validate_id_token(
            id_token, directory=directory, metadata=metadata, expected=expected, now=time.time()
        )
    elif expected.subject is None:
        raise LoginError(
            "id_token_missing",
            "The identity provider did not send an ID token.",
            hint="Ask your administrator to check that the 'openid' scope is requested.",
        )
    subject = claims.get("sub", expected.subject)
    assert isinstance(subject, str)
    groups = extract_groups(claims, idp.groups_claim, max_groups=max_groups)
    wants_userinfo = not groups.present or "email" not in claims
    if wants_userinfo and metadata.userinfo_endpoint and isinstance(access_token, str):
        extra = await userinfo(http, metadata, access_token=access_token, subject=subject)
        if "email" in claims:  # `email_verified` speaks of the email next to it, nothing else
            extra = {k: v for k, v in extra.items() if k not in ("email", "email_verified")}
        claims = {**extra, **claims}  # the signed ID token wins where both speak
        groups = extract_groups(claims, idp.groups_claim, max_groups=max_groups)
    if not claims:
        return None
    email = check_email(
        claims,
        allowed_domains=idp.allowed_domains,
        require_verified=idp.require_verified_email,
    )
    return Person(subject=subject, email=email, name=display_name(claims), groups=groups)
