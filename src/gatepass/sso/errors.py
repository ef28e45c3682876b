"""Why a sign-in at a corporate IdP did not succeed.

    LoginError                  the person gets a page saying so, the audit trail a reason
     ├── LoginDenied            signed in fine, but not allowed in (disabled, no mapping): 403
     └── IdpUnavailable         the IdP did not answer, or answered with a server error: 502

Every failure in `sso/` ends as one of these; foreign exceptions (httpx2, joserfc, Authlib)
are translated where they are raised, with `raise ... from exc`. `reason` is a short
machine-readable word for the audit trail; `message` and `hint` are for the person.
"""

from __future__ import annotations


class LoginError(Exception):
    """A sign-in that cannot go on; `reason` goes to the audit trail, the rest to the page."""

    status = 400
    title = "Sign-in failed"

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        hint: str | None = None,
        detail: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        if status is not None:
            self.status = status
        self.reason = reason
        self.message = message
        self.hint = hint or "Go back to the application and try signing in again."
        self.detail = detail  # for the audit trail only (never shown: it may name internals)


class LoginDenied(LoginError):
    """The IdP vouched for the person, but Gatepass gives them no access."""

    status = 403
    title = "No access"


class IdpUnavailable(LoginError):
    """The identity provider could not be reached or failed; trying again later may work."""

    status = 502
    title = "The identity provider did not answer"

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(
            reason,
            "The identity provider did not answer, or answered with an error.",
            hint="This is usually temporary. Wait a moment and sign in again.",
            detail=detail,
        )
