"""The pages a person sees during sign-in: the IdP chooser, and what went wrong."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from gatepass.identity import ReturnTo
from gatepass.sso.errors import LoginDenied, LoginError
from gatepass.store.identity import IdpConnection
from gatepass.web import page

NO_MAPPING_HINT = (
    "Ask your Gatepass administrator (usually the security team) to give your group or "
    "your email address access, then sign in again."
)


def failure_page(
    error: LoginError,
    *,
    reference: str,
    email: str | None = None,
    idp_name: str | None = None,
    back: ReturnTo | None = None,
) -> HTMLResponse:
    """A clear page for any failed sign-in; `reference` ties it to the audit event.

    With `back`, the page also links to the application that is waiting for the sign-in
    (its error redirect), with our origin as Referer as on the success path.
    """
    common = {"hint": error.hint, "reference": reference, "back": back}
    referrer_policy = "origin" if back is not None else "no-referrer"
    if isinstance(error, LoginDenied) and email is not None:
        return page(
            "sso/no_access.html",
            {**common, "message": error.message, "email": email, "idp_name": idp_name},
            status=error.status,
            referrer_policy=referrer_policy,
        )
    return page(
        "message.html",
        {**common, "title": error.title, "message": error.message, "error": True},
        status=error.status,
        referrer_policy=referrer_policy,
    )


def no_access(reason: str) -> LoginDenied:
    """The person signed in fine, but no mapping (or no usable key) gives them access."""
    messages = {
        "no_mapping": "You signed in successfully, but no access rule gives your account "
        "access to Gatepass.",
        "key_revoked": "You signed in successfully, but the key your access rule points to "
        "has been revoked.",
        "key_expired": "You signed in successfully, but the key your access rule points to "
        "has expired.",
    }
    return LoginDenied(reason, messages.get(reason, messages["no_mapping"]), hint=NO_MAPPING_HINT)


def chooser_page(
    idps: Sequence[IdpConnection], *, login: str, action: str, minutes: int
) -> HTMLResponse:
    """One button per IdP; each continues the same pending sign-in (`login`)."""
    choices = [
        {
            "name": idp.name,
            "label": idp.name,
            "href": f"{action}?{urlencode({'login': login, 'idp': idp.name})}",
        }
        for idp in idps
    ]
    return page(
        "sso/choose.html",
        {"idps": choices, "minutes": minutes},
    )
