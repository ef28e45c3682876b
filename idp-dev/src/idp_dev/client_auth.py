"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3)."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import unquote_plus

from starlette.datastructures import FormData
from starlette.requests import Request

from idp_dev.config import AuthMethod, Client
from idp_dev.errors import OAuthProblem
from idp_dev.provider import Provider

_DUMMY_SECRET = "not-a-real-secret-but-about-as-long"


def single(form: FormData, name: str) -> str | None:
    """A form parameter that must not repeat (RFC 6749 §3.2)."""
    values = form.getlist(name)
    if len(values) > 1:
        raise OAuthProblem("invalid_request", f"parameter {name} given more than once")
    if not values:
        return None
    value = values[0]
    if not isinstance(value, str):
        raise OAuthProblem("invalid_request", f"parameter {name} must be text")
    return value


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if header is None or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthProblem(
            "invalid_client", "malformed Basic credentials", status=401, basic=True
        ) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthProblem("invalid_client", "malformed Basic credentials", status=401, basic=True)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(provider: Provider, request: Request, form: FormData) -> Client:
    """The calling client, or `invalid_client`; a client uses exactly one method."""
    basic = _basic_credentials(request)
    posted_secret = single(form, "client_secret")
    posted_id = single(form, "client_id")
    method: AuthMethod
    if basic is not None:
        if posted_secret is not None:
            raise OAuthProblem("invalid_request", "more than one client authentication method")
        if posted_id is not None and posted_id != basic[0]:
            raise OAuthProblem("invalid_request", "client_id does not match the credentials")
        client_id, secret = basic
        method = "client_secret_basic"
    elif posted_secret is not None:
        if posted_id is None:
            raise OAuthProblem("invalid_request", "client_secret without client_id")
        client_id, secret, method = posted_id, posted_secret, "client_secret_post"
    elif posted_id is not None:
        client_id, secret, method = posted_id, "", "none"
    else:
        raise OAuthProblem("invalid_client", "no client authentication", status=401)

    is_basic = method == "client_secret_basic"
    client = provider.clients.get(client_id)
    expected = client.client_secret if client and client.client_secret else _DUMMY_SECRET
    secret_ok = hmac.compare_digest(expected.encode(), secret.encode())
    if client is None:
        raise OAuthProblem("invalid_client", "unknown client", status=401, basic=is_basic)
    if method not in client.auth_methods:
        raise OAuthProblem(
            "invalid_client",
            f"client is not registered for {method}",
            status=401,
            basic=is_basic,
        )
    if method != "none" and not secret_ok:
        raise OAuthProblem("invalid_client", "wrong client secret", status=401, basic=is_basic)
    return client
