"""Which redirect URIs a client may use: exact match, or any port on loopback (RFC 8252 §7.3)."""

from __future__ import annotations

from urllib.parse import urlsplit

from idp_dev.config import Client

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def redirect_uri_allowed(client: Client, uri: str) -> bool:
    """Exact string match; with `loopback_any_port`, only the port of a loopback URI may vary."""
    if uri in client.redirect_uris:
        return True
    if not client.loopback_any_port:
        return False
    return any(_same_but_port(registered, uri) for registered in client.redirect_uris)


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
