"""The running provider's state and the control operations that tests use to steer it."""

from __future__ import annotations

import dataclasses
import hmac
import threading
from typing import Any

from idp_dev.clock import Clock
from idp_dev.config import Client, ConfigError, IdpConfig, User, build
from idp_dev.grants import GrantStore
from idp_dev.keys import KeyRing
from idp_dev.switches import Switches

# Compared against on an unknown login so a miss costs what a hit costs.
_DUMMY_PASSWORD = "not-a-real-password-but-just-as-long"


class Provider:
    """Users, clients, keys, switches and grants behind one lock; all state is in memory."""

    def __init__(self, config: IdpConfig, issuer: str) -> None:
        self.config = config
        self.issuer = issuer.rstrip("/")
        self.clock = Clock()
        self.keys = KeyRing(self.clock, config.key_grace_period)
        self.switches = config.switches
        self.grants = GrantStore()
        self.users: dict[str, User] = {u.sub: u for u in config.users}
        self.clients: dict[str, Client] = {c.client_id: c for c in config.clients}
        # Reentrant: control operations may call one another while holding it.
        self.lock = threading.RLock()

    # -- lookups ---------------------------------------------------------------------------

    def find_user(self, who: str) -> User | None:
        """By `sub`, or by email without regard to case."""
        with self.lock:
            if who in self.users:
                return self.users[who]
            wanted = who.lower()
            return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    def authenticate(self, login: str, password: str) -> User | None:
        user = self.find_user(login.strip())
        expected = user.password if user is not None else _DUMMY_PASSWORD
        matches = hmac.compare_digest(expected.encode(), password.encode())
        if user is None or not matches or user.disabled:
            return None
        return user

    def signing_alg(self, client: Client | None) -> str:
        if client is not None and client.signing_alg is not None:
            return client.signing_alg
        return self.config.signing_alg

    # -- control operations (mirrored by the /_control endpoints) ---------------------------

    def set(self, **values: Any) -> Switches:
        """Turn misbehaviour switches on or off; the rest keep their current values."""
        with self.lock:
            self.switches = self.switches.changed(**values)
            return self.switches

    def reset(self) -> Switches:
        """All switches back to the values the provider started with."""
        with self.lock:
            self.switches = self.config.switches
            return self.switches

    def restore(self) -> None:
        """Back to the start-up state: users, clients, switches, clock; sessions and grants
        forgotten. Keys are kept unless they were rotated. For suites sharing one provider."""
        with self.lock:
            self.switches = self.config.switches
            self.grants = GrantStore()
            self.users = {u.sub: u for u in self.config.users}
            self.clients = {c.client_id: c for c in self.config.clients}
            self.clock.offset = 0.0
            if self.keys.retired:
                self.keys = KeyRing(self.clock, self.config.key_grace_period)

    def rotate_keys(self) -> dict[str, str]:
        """New signing keys; returns the new kid per algorithm."""
        with self.lock:
            return self.keys.rotate()

    def advance_clock(self, seconds: float) -> None:
        """Move the provider's clock forward: codes, tokens, sessions and old keys expire."""
        with self.lock:
            self.clock.advance(seconds)

    def add_user(self, user: User) -> User:
        with self.lock:
            if self.find_user(user.email) is not None or user.sub in self.users:
                raise ConfigError(f"user {user.email!r} already exists")
            self.users[user.sub] = user
            return user

    def update_user(self, who: str, **changes: Any) -> User:
        """Change a user's attributes (e.g. `groups=[...]`); later tokens and refreshes see it."""
        with self.lock:
            user = self._require_user(who)
            if "sub" in changes and changes["sub"] != user.sub:
                raise ConfigError("a user's sub cannot change")
            merged = {f.name: getattr(user, f.name) for f in dataclasses.fields(User)}
            merged.update(changes)
            updated = build(User, merged, f"user {who}")
            self.users[user.sub] = updated
            if updated.disabled:
                self.grants.revoke_user(user.sub)
            return updated

    def disable_user(self, who: str) -> User:
        """Sign-in refused, sessions ended, refresh tokens give `invalid_grant`, userinfo 401."""
        return self.update_user(who, disabled=True)

    def enable_user(self, who: str) -> User:
        return self.update_user(who, disabled=False)

    def add_client(self, client: Client) -> Client:
        """Register (or replace) a client, e.g. once the relying party knows its port."""
        with self.lock:
            self.clients[client.client_id] = client
            return client

    def _require_user(self, who: str) -> User:
        user = self.find_user(who)
        if user is None:
            raise ConfigError(f"no user {who!r}")
        return user
