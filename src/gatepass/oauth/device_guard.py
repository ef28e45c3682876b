"""What guards the device flow's browser pages and its unauthenticated endpoint.

- `AttemptLimiter`: a sliding window per client address (RFC 8628 §5.1, §5.2). In memory, so
  each replica counts on its own: with N replicas an address gets at most N times the limit,
  still far too few tries to guess a user code.
- CSRF (RFC 6749 §10.12 in spirit): a POST is accepted only when its `Origin` (or, lacking
  one, `Sec-Fetch-Site`) says it came from our own origin, *and* it carries a token derived
  from a random value in an `HttpOnly`, `SameSite=Strict` cookie that only this browser has.
  The token is a keyed hash of that value, so a page cannot compute it without the cookie.
"""

from __future__ import annotations

import hmac
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from gatepass.crypto import Keyring

COOKIE_PATH = "/device"
MAX_TRACKED = 50_000  # addresses; the oldest entries are dropped past this


def client_address(request: Request) -> str:
    """The peer address (the server does not trust `X-Forwarded-For`)."""
    return request.client.host if request.client is not None else "unknown"


class AttemptLimiter:
    """At most `limit` hits per `window` seconds per key."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window  # seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= MAX_TRACKED:
                del self._hits[next(iter(self._hits))]
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def blocked(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None if it may now."""
        hits = self._recent(key)
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.window - self._clock()))

    def hit(self, key: str) -> int | None:
        """Count one attempt; if the budget was already spent, don't, and say how long to wait."""
        retry_after = self.blocked(key)
        if retry_after is None:
            self._recent(key).append(self._clock())
        return retry_after


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, public_url: str) -> bool:
    """Whether a browser says this request came from a page on our origin.

    Browsers send `Origin` on every POST (our pages use `Referrer-Policy: same-origin`, so it
    is not `null`); `Sec-Fetch-Site` is the fallback. Clients that send neither are not
    browsers and are left to the CSRF token.
    """
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == origin_of(public_url)
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    return True


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def csrf_token(keyring: Keyring, secret: str, purpose: str) -> str:
    """The form token for the cookie value `secret`, distinct per purpose (entry, confirm)."""
    return keyring.hash_credential(f"device-csrf:{purpose}:{secret}")


def csrf_matches(keyring: Keyring, secret: str | None, purpose: str, offered: object) -> bool:
    expected = csrf_token(keyring, secret or "", purpose)
    ok = isinstance(offered, str) and hmac.compare_digest(expected, offered)
    return ok and bool(secret)


def set_browser_cookie(
    response: Response, name: str, value: str, *, max_age: int, secure: bool
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
