"""`run_idp`: the one-line way for a test suite to get a live provider on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette

from idp_dev.app import create_app
from idp_dev.config import Client, IdpConfig, User
from idp_dev.provider import Provider
from idp_dev.server import bind, serve_in_thread, socket_url
from idp_dev.switches import Switches


class IdpHandle:
    """A provider running in this process; every method takes effect on the next request."""

    def __init__(self, app: Starlette, base_url: str) -> None:
        self.app = app
        self.provider: Provider = app.state.provider
        self.base_url = base_url  # where it listens; the issuer may be configured otherwise
        self.issuer = self.provider.issuer

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def switches(self) -> Switches:
        return self.provider.switches

    def set(self, **switches: Any) -> Switches:
        """Turn misbehaviour switches on or off, e.g. `idp.set(wrong_iss=True)`."""
        return self.provider.set(**switches)

    def reset(self) -> Switches:
        return self.provider.reset()

    def restore(self) -> None:
        """Forget sessions, grants and every runtime change (see `Provider.restore`)."""
        self.provider.restore()

    def rotate_keys(self) -> dict[str, str]:
        return self.provider.rotate_keys()

    def advance_clock(self, seconds: float) -> None:
        self.provider.advance_clock(seconds)

    def add_user(self, user: User) -> User:
        return self.provider.add_user(user)

    def update_user(self, who: str, **changes: Any) -> User:
        return self.provider.update_user(who, **changes)

    def disable_user(self, who: str) -> User:
        return self.provider.disable_user(who)

    def enable_user(self, who: str) -> User:
        return self.provider.enable_user(who)

    def add_client(self, client: Client) -> Client:
        return self.provider.add_client(client)


@contextmanager
def run_idp(
    config: IdpConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[IdpHandle]:
    """Serve a provider (default `IdpConfig.demo()`) in a background thread; yields its handle."""
    sock = bind(host, port)
    base_url = socket_url(sock)
    app = create_app(config or IdpConfig.demo(), base_url)
    with serve_in_thread(app, sock):
        yield IdpHandle(app, base_url)
