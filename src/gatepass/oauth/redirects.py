"""Which redirect URI an authorization request may use (RFC 6749 §3.1.2, RFC 8252 §7.3)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

# The whole authority of a loopback redirect: host and an optional port, nothing else (no
# userinfo, no suffix such as `127.0.0.1.evil.com`).
_LOOPBACK_AUTHORITY = re.compile(
    r"^(?P<host>127\.0\.0\.1|\[::1\]|localhost)(?::(?P<port>\d{1,5}))?$"
)


def _loopback_parts(uri: str) -> tuple[str, str, str] | None:
    """(host, path, query) of a plain-http loopback URI, or None if `uri` is not one."""
    if any(c.isspace() or ord(c) < 0x20 for c in uri) or "\\" in uri:
        return None
    parts = urlsplit(uri)
    if not uri.startswith("http://") or parts.fragment or "#" in uri:  # scheme: exact case
        return None
    match = _LOOPBACK_AUTHORITY.match(parts.netloc)
    if match is None:
        return None
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    return match.group("host"), parts.path, parts.query


def match_redirect_uri(requested: str | None, registered: Sequence[str]) -> str | None:
    """The redirect URI to use for this request, or None when it must be refused.

    Registered URIs match exactly (RFC 6749 §3.1.2.3), except that a loopback IP redirect
    may carry any port (RFC 8252 §7.3); scheme, host, path and query must still be equal.
    Without `redirect_uri`, the client must have exactly one registered (RFC 6749 §3.1.2.3).
    """
    if requested is None:
        return registered[0] if len(registered) == 1 else None
    if requested in registered:
        return requested
    wanted = _loopback_parts(requested)
    if wanted is None:
        return None
    for candidate in registered:
        if _loopback_parts(candidate) == wanted:
            return requested
    return None
