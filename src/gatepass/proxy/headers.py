"""Which headers cross the gateway, in each direction.

Requests: an allow-list. Only what the Messages API reads goes upstream; the client's
credentials, cookies, our own identity headers and hop-by-hop headers never do, whatever
their spelling, because nothing outside the list is copied at all.
Responses: everything but hop-by-hop and framing headers, which the server recomputes.
"""

from __future__ import annotations

from collections.abc import Iterable

FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "content-type",
        "accept",
        "user-agent",
        "x-app",
        "x-claude-code-session-id",
    }
)
FORWARDED_REQUEST_PREFIXES = ("anthropic-", "x-stainless-")

HOP_BY_HOP_RESPONSE_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"content-encoding",
        b"server",
        b"date",
        b"set-cookie",
    }
)


def upstream_request_headers(
    client_headers: Iterable[tuple[bytes, bytes]],
    api_key: str,
    extra: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """Headers for the upstream request: the allowed client headers plus the provider's key."""
    out: dict[str, str] = {}
    for raw_name, raw_value in client_headers:
        name = raw_name.decode("latin-1").lower()
        if name in FORWARDED_REQUEST_HEADERS or name.startswith(FORWARDED_REQUEST_PREFIXES):
            value = raw_value.decode("latin-1")
            out[name] = f"{out[name]}, {value}" if name in out else value
    for name, value in extra:
        out[name.lower()] = value
    out.setdefault("anthropic-version", "2023-06-01")
    out["x-api-key"] = api_key
    out["accept-encoding"] = "identity"  # relay bytes as sent; usage is read from them
    return out


def relayed_response_headers(upstream: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Raw upstream response headers to send to the client, framing and hop-by-hop removed."""
    relayed = []
    for name, value in upstream:
        name = name.lower()
        if name not in HOP_BY_HOP_RESPONSE_HEADERS:
            relayed.append((name, value))
    return relayed
