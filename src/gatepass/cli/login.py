"""`gatepass login --url https://HOST/anthropic`: a bearer token from the terminal.

Runs the device flow of Claude Code's gateway protocol (RFC 8628) against a Gatepass (or any
gateway that speaks it), caches the tokens in a file only the user can read, and prints the
access token on standard output, alone, so it works as Claude Code's `apiKeyHelper`. On the
next run it prints the cached token while it is fresh, refreshes it when it is not, and falls
back to the device flow when the refresh is refused. Prompts go to standard error.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx2
import typer

from gatepass.cli import app, fail

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
EARLY_REFRESH = 60  # seconds before expiry a cached token counts as stale


class LoginError(Exception):
    """The gateway refused or broke the sign-in; the message says how."""


@dataclass
class Endpoints:
    device_authorization: str
    token: str


def default_cache() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gatepass" / "credentials.json"


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def discover(http: httpx2.Client, base: str) -> Endpoints:
    """Endpoints from `{base}/.well-known/oauth-authorization-server`, same origin only."""
    defaults = Endpoints(base + "/oauth/device_authorization", base + "/oauth/token")
    try:
        response = http.get(base + "/.well-known/oauth-authorization-server")
    except httpx2.HTTPError as exc:
        raise LoginError(f"cannot reach {base}: {exc}") from exc
    if response.status_code != 200:
        return defaults
    try:
        metadata = response.json()
    except ValueError:
        return defaults
    device = metadata.get("device_authorization_endpoint")
    token = metadata.get("token_endpoint")
    return Endpoints(
        device
        if isinstance(device, str) and _same_origin(device, base)
        else defaults.device_authorization,
        token if isinstance(token, str) and _same_origin(token, base) else defaults.token,
    )


def _tokens(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and isinstance(body.get("access_token"), str):
        body["obtained_at"] = int(time.time())
        return body
    raise LoginError(
        body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
    )


def device_flow(
    http: httpx2.Client, endpoints: Endpoints, *, timeout: float = 900
) -> dict[str, Any]:
    """RFC 8628: ask for a code, show it, poll until approved, denied or expired."""
    response = http.post(endpoints.device_authorization, data={"surface": "gatepass_cli"})
    if response.status_code != 200:
        raise LoginError(
            f"device authorization refused: HTTP {response.status_code} {response.text[:200]}"
        )
    grant = response.json()
    interval = float(grant.get("interval", 5))
    uri = grant.get("verification_uri_complete") or grant.get("verification_uri")
    typer.echo(f"To sign in, open {uri}\nand confirm the code {grant['user_code']}.", err=True)
    deadline = time.monotonic() + min(timeout, float(grant.get("expires_in", 600)))
    while time.monotonic() < deadline:
        time.sleep(interval)
        polled = http.post(
            endpoints.token, data={"grant_type": DEVICE_GRANT, "device_code": grant["device_code"]}
        )
        if polled.status_code == 200:
            return _tokens(polled)
        error = (
            polled.json().get("error")
            if polled.headers.get("content-type", "").startswith("application/json")
            else None
        )
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5  # RFC 8628 §3.5
            continue
        if error == "access_denied":
            raise LoginError("the sign-in was denied")
        if error == "expired_token":
            raise LoginError("the code expired before it was approved; run gatepass login again")
        raise LoginError(
            f"unexpected answer from the token endpoint: {polled.status_code} {polled.text[:200]}"
        )
    raise LoginError("timed out waiting for approval")


def refresh(http: httpx2.Client, endpoints: Endpoints, refresh_token: str) -> dict[str, Any]:
    response = http.post(
        endpoints.token, data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )
    return _tokens(response)


def _load(cache: Path, base: str) -> dict[str, Any] | None:
    try:
        entries = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    entry = entries.get(base) if isinstance(entries, dict) else None
    return entry if isinstance(entry, dict) else None


def _save(cache: Path, base: str, tokens: dict[str, Any]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        entries = json.loads(cache.read_text())
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        entries = {}
    entries[base] = tokens
    temporary = cache.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(entries, handle)
    temporary.replace(cache)


def _fresh(tokens: dict[str, Any]) -> bool:
    expires_in = tokens.get("expires_in")
    if not isinstance(expires_in, int | float):
        return False
    obtained_at = tokens.get("obtained_at", 0)
    return bool(time.time() < float(obtained_at) + float(expires_in) - EARLY_REFRESH)


def obtain_token(
    base: str, cache: Path, *, force: bool = False, http: httpx2.Client | None = None
) -> str:
    """A valid access token for `base`: cached, refreshed, or from a new device flow."""
    base = base.rstrip("/")
    client = http or httpx2.Client(timeout=30, follow_redirects=False)
    try:
        cached = None if force else _load(cache, base)
        if cached is not None and _fresh(cached):
            return str(cached["access_token"])
        endpoints = discover(client, base)
        tokens = None
        if cached is not None and isinstance(cached.get("refresh_token"), str):
            try:
                tokens = refresh(client, endpoints, cached["refresh_token"])
            except LoginError:
                tokens = None  # refused (e.g. deprovisioned or expired): sign in again
        if tokens is None:
            tokens = device_flow(client, endpoints)
        _save(cache, base, tokens)
        return str(tokens["access_token"])
    finally:
        if http is None:
            client.close()


@app.command()
def login(
    url: Annotated[str, typer.Option(help="The gateway's base URL, e.g. https://HOST/anthropic.")],
    cache: Annotated[
        Path | None,
        typer.Option(help="Where tokens are kept (default: ~/.config/gatepass/credentials.json)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Sign in again even if a token is cached.")] = False,
) -> None:
    """Sign in with the device flow and print an access token (usable as apiKeyHelper)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise fail(f"invalid URL {url!r}: expected https://HOST/anthropic")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise fail("plain http is allowed only on loopback; use https://")
    try:
        token = obtain_token(url, cache or default_cache(), force=force)
    except (LoginError, httpx2.HTTPError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(token)
