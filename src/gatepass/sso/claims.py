"""Who the IdP says the person is: email (checked against allowed domains) and groups.

Identity is (issuer, subject), never the email; the email only feeds email mappings and the
domain check, so that check must not be fooled by `a@corp.example@evil.com`,
`a@evil-corp.example` or `a@corp.example.evil.com`. Group lists that may have been cut short
(Entra's overage pointer, Okta's cap) are marked incomplete, so they can never widen access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gatepass.sso.errors import LoginDenied, LoginError

MAX_STORED_GROUPS = 1000  # beyond this we keep the first ones and call the list incomplete


@dataclass(frozen=True, slots=True)
class Groups:
    values: tuple[str, ...]
    complete: bool  # False when the IdP may have left some out
    present: bool  # False when the claim (and any overage marker) is absent


@dataclass(frozen=True, slots=True)
class Person:
    """What Gatepass keeps from a validated sign-in."""

    subject: str
    email: str
    name: str | None
    groups: Groups


def split_email(value: object) -> tuple[str, str] | None:
    """(local part, lower-cased domain) of a plain `local@domain`, or None if it is not one."""
    if not isinstance(value, str) or len(value) > 320 or value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if not local or not domain or any(c.isspace() or ord(c) < 32 for c in value):
        return None
    return local, domain.lower()


def check_email(
    claims: dict[str, Any], *, allowed_domains: Sequence[str], require_verified: bool
) -> str:
    """The person's email, lower-cased, once it passes the connection's rules."""
    parts = split_email(claims.get("email"))
    if parts is None:
        raise LoginError(
            "email_missing",
            "The identity provider did not send a usable email address for you.",
            hint="Ask your administrator to release the email claim to Gatepass.",
        )
    verified = claims.get("email_verified")
    if require_verified and verified is not True and verified != "true":
        raise LoginDenied(
            "email_unverified",
            "Your email address is not verified at your identity provider.",
            hint="Verify your email address there, then sign in again.",
        )
    local, domain = parts
    allowed = {d.lower() for d in allowed_domains}
    if allowed and domain not in allowed:  # exact: no suffix or substring matching
        raise LoginDenied(
            "email_domain",
            f"Accounts from {domain} cannot sign in here.",
            hint="Sign in with your company account, or ask your administrator.",
            detail=f"domain {domain!r} not in {sorted(allowed)!r}",
        )
    return f"{local}@{domain}".lower()


def _walk(claims: dict[str, Any], path: str) -> object:
    node: object = claims
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _overage(claims: dict[str, Any], path: str) -> bool:
    """Entra ID: too many groups → the claim is replaced by `_claim_names` or `hasgroups`."""
    names = claims.get("_claim_names")
    head = path.split(".")[0]
    if isinstance(names, dict) and (path in names or head in names):
        return True
    return claims.get("hasgroups") in (True, "true")


def extract_groups(claims: dict[str, Any], path: str, *, max_groups: int) -> Groups:
    """Groups at the dotted `path`; anything but a list of strings counts as none."""
    if _overage(claims, path):
        return Groups((), complete=False, present=True)
    value = _walk(claims, path)
    if value is None:
        return Groups((), complete=True, present=False)
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        return Groups((), complete=True, present=True)
    groups = tuple(dict.fromkeys(g for g in value if g))
    # A list at the provider's cap (Okta sends at most 100) may have been cut short.
    complete = len(value) < max_groups and len(groups) <= MAX_STORED_GROUPS
    return Groups(groups[:MAX_STORED_GROUPS], complete=complete, present=True)


def display_name(claims: dict[str, Any]) -> str | None:
    name = claims.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()[:300]
    return None
