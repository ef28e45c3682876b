"""Browser sessions at the provider: a random id in a cookie, the session itself in memory."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp_dev.grants import Session, new_secret
from idp_dev.provider import Provider

COOKIE = "idp_dev_session"


def current_session(provider: Provider, request: Request) -> Session | None:
    """The live session for this browser, if its user still exists and is enabled."""
    sid = request.cookies.get(COOKIE)
    if sid is None:
        return None
    with provider.lock:
        session = provider.grants.sessions.get(sid)
        if session is None or session.expires <= provider.clock.now():
            return None
        user = provider.users.get(session.sub)
        if user is None or user.disabled:
            return None
        return session


def start_session(provider: Provider, sub: str) -> Session:
    """Always a fresh id at sign-in, so an id planted beforehand is worthless (fixation)."""
    now = provider.clock.now()
    session = Session(
        sid=new_secret(), sub=sub, auth_time=now, expires=now + provider.config.session_ttl
    )
    with provider.lock:
        provider.grants.sessions[session.sid] = session
    return session


def set_cookie(provider: Provider, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.sid,
        max_age=provider.config.session_ttl,
        path="/",
        httponly=True,
        samesite="lax",
        secure=provider.issuer.startswith("https://"),
    )


def end_session(provider: Provider, request: Request, response: Response) -> None:
    sid = request.cookies.get(COOKIE)
    if sid is not None:
        with provider.lock:
            provider.grants.sessions.pop(sid, None)
    response.delete_cookie(COOKIE, path="/")
