"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3, §3.2.1).

Public clients identify themselves with `client_id` alone; confidential ones authenticate with
`client_secret_basic` or `client_secret_post`. Secrets are compared as keyed hashes, with the
same work done for an unknown client as for a known one.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from starlette.datastructures import FormData
from starlette.requests import Request

from gatepass.crypto import Keyring
from gatepass.oauth.errors import TokenError
from gatepass.store import identity_queries
from gatepass.store.db import SessionMaker
from gatepass.store.oauth import OAuthClient

AuthMethod = Literal["none", "client_secret_basic", "client_secret_post"]
BASIC_CHALLENGE = {"www-authenticate": 'Basic realm="gatepass", charset="UTF-8"'}
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the request offered to identify its client."""

    client_id: str | None
    secret: str | None
    method: AuthMethod


def single(form: FormData, name: str) -> str | None:
    """A form parameter that must not repeat (RFC 6749 §3.1, §3.2); empty counts as absent."""
    values = form.getlist(name)
    if len(values) > 1:
        raise TokenError("invalid_request", f"{name} given more than once")
    value = values[0] if values else None
    if value is not None and not isinstance(value, str):
        raise TokenError("invalid_request", f"{name} must be a plain form field")
    return value or None


def read_credentials(request: Request, form: FormData) -> Credentials:
    """The client's credentials: HTTP Basic, or form fields (RFC 6749 §2.3.1)."""
    body_id, body_secret = single(form, "client_id"), single(form, "client_secret")
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        if body_secret is not None:
            return Credentials(body_id, body_secret, "client_secret_post")
        return Credentials(body_id, None, "none")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
        raw_id, colon, raw_secret = decoded.partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raw_id, colon, raw_secret = "", "", ""
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if not colon or not client_id:
        raise TokenError(
            "invalid_client", "malformed Basic credentials", status=401, headers=BASIC_CHALLENGE
        )
    if body_secret is not None:
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        raise TokenError("invalid_request", "more than one client authentication method")
    if body_id is not None and body_id != client_id:
        raise TokenError(
            "invalid_client",
            "client_id differs from the authenticated client",
            status=401,
            headers=BASIC_CHALLENGE,
        )
    return Credentials(client_id, secret, "client_secret_basic")


async def authenticate(
    sessions: SessionMaker, keyring: Keyring, credentials: Credentials
) -> OAuthClient | None:
    """The authenticated client, None when no client was named, or `invalid_client` (401)."""
    if credentials.client_id is None:
        if credentials.secret is not None:
            raise TokenError("invalid_client", "client_secret without client_id", status=401)
        return None
    async with sessions() as session:
        client = await identity_queries.get_client(session, client_id=credentials.client_id)
    challenge = BASIC_CHALLENGE if credentials.method == "client_secret_basic" else {}
    if credentials.secret is not None:
        # Same work on a miss as on a hit: hash and compare either way (timing).
        offered = keyring.hash_credential(credentials.secret)
        stored = client.secret_hash if client is not None and client.secret_hash else _DUMMY_HASH
        matches = hmac.compare_digest(offered, stored)
        if client is None or client.public or not matches:
            raise TokenError(
                "invalid_client", "client authentication failed", status=401, headers=challenge
            )
        return client
    if client is None:
        raise TokenError("invalid_client", "unknown client", status=401, headers=challenge)
    if not client.public:
        # RFC 6749 §3.2.1: confidential clients must authenticate.
        raise TokenError("invalid_client", "client authentication required", status=401)
    return client
