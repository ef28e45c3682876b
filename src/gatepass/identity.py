"""The contract between the relying party (`sso/`) and its users (`oauth/`, device flow, admin).

`sso/` signs a browser in at a corporate IdP for some *purpose* and hands back a `SignedIn`:
the person, persisted, already mapped to a virtual key. The purpose's completion handler
(registered with `LoginBroker.on_complete`) then answers the browser, e.g. with an
authorization code for Claude Desktop. On every refresh the issuer asks `recheck` whether the
person may keep going: still enabled, still mapped, and still known to the IdP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from starlette.requests import Request
from starlette.responses import Response

Purpose = Literal["authorize", "device", "admin"]
Role = Literal["user", "admin"]


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A person the IdP vouched for, mapped to a key (no mapping, no `SignedIn`)."""

    user_id: int
    public_id: str  # the `sub` of Gatepass's own tokens
    email: str | None
    name: str | None
    groups: tuple[str, ...]
    idp_name: str
    key_id: int
    role: Role
    auth_time: datetime


# payload is exactly what `begin` was given; the handler answers the browser.
Completion = Callable[[Request, dict[str, Any], SignedIn], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class ReturnTo:
    """Where a failed sign-in's page sends the person back, so the application stops waiting."""

    url: str
    app_name: str


# After a sign-in failed (denied=True: the person may not, or cancelled; False: something broke),
# given the payload of `begin` and a short description: the way back, or None for none.
FailureReturn = Callable[[dict[str, Any], bool, str], Awaitable[ReturnTo | None]]


@dataclass(frozen=True, slots=True)
class Recheck:
    """The outcome of re-checking a person at refresh time."""

    status: Literal["ok", "denied"]
    identity: SignedIn | None = None  # when ok: current groups and (maybe new) key
    reason: str = ""  # when denied: for the audit trail and the error description


class LoginBroker(Protocol):
    async def begin(
        self,
        request: Request,
        *,
        purpose: Purpose,
        payload: dict[str, Any],
        login_hint: str | None = None,
    ) -> Response:
        """Start a sign-in at the right IdP (or show the chooser) for this browser."""
        ...

    def on_complete(self, purpose: Purpose, completion: Completion) -> None:
        """Register what happens when a sign-in for `purpose` succeeds."""
        ...

    def on_failure(self, purpose: Purpose, failure: FailureReturn) -> None:
        """Register where the failure page of a sign-in for `purpose` leads back to."""
        ...

    async def recheck(self, user_id: int, auth_time: datetime) -> Recheck:
        """Whether the person may keep their session (called on every token refresh)."""
        ...
