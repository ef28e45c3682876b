"""Which redirect URIs a client may use: exact match, or any port on loopback (RFC 8252 §7.3)."""

from __future__ import annotations

from urllib.parse import urlsplit

from idp_dev.config import Client

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def redirect_uri_allowed(client: Client, uri: str) -> bool:
    """Exact string match; with `loopback_any_port`, only the port of a loopback URI may vary."""
    return _allowed(client.redirect_uris, uri, client.loopback_any_port)


def post_logout_uri_allowed(client: Client, uri: str) -> bool:
    """The same rule for where `/logout` may send the browser."""
    return _allowed(client.post_logout_redirect_uris, uri, client.loopback_any_port)


def _allowed(registered: tuple[str, ...], uri: str, loopback_any_port: bool) -> bool:
    if uri in registered:
        return True
    return loopback_any_port and any(_same_but_port(r, uri) for r in registered)


def _same_but_port(registered: str, candidate: str) -> bool:
    try:
        want, got = urlsplit(registered), urlsplit(candidate)
        got_port = got.port  # raises ValueError on garbage such as ":80x"
    except ValueError:
        return False
    if got.scheme != "http" or want.scheme != "http":
        return False
    if got.hostname not in LOOPBACK_HOSTS or got.hostname != want.hostname:
        return False
    # Nothing but host and port in the authority: no userinfo, no odd spellings of the host.
    host = f"[{got.hostname}]" if ":" in got.hostname else got.hostname
    expected_netloc = host if got_port is None else f"{host}:{got_port}"
    if got.netloc != expected_netloc:
        return False
    return (got.path, got.query, got.fragment) == (want.path, want.query, "")
