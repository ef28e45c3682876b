"""In-memory records of what the provider has handed out: requests, sessions, codes, tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    """Tokens are indexed by hash, so a dump of the store holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class PendingAuthorization:
    """A validated authorization request waiting for sign-in or consent (its id is the CSRF)."""

    rid: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    login_hint: str
    expires: int


@dataclass
class Session:
    """A browser's sign-in at the provider, for SSO across authorization requests."""

    sid: str
    sub: str
    auth_time: int
    expires: int
    consents: set[str] = field(default_factory=set)


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    sub: str
    scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires: int
    redeemed: bool = False
    family: str | None = None  # tokens issued from it, revoked if the code is replayed


@dataclass
class TokenFamily:
    """Everything descended from one authorization code: revoked together."""

    fid: str
    client_id: str
    sub: str
    scopes: tuple[str, ...]
    auth_time: int
    revoked: bool = False
    access_tokens: set[str] = field(default_factory=set)  # digests


@dataclass
class RefreshToken:
    family: str
    expires: int
    used: bool = False


@dataclass
class AccessToken:
    family: str
    client_id: str
    sub: str
    scopes: tuple[str, ...]
    expires: int


@dataclass
class GrantStore:
    """Plain dictionaries; callers hold the provider lock around check-then-change sequences."""

    pending: dict[str, PendingAuthorization] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)  # by digest
    families: dict[str, TokenFamily] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)  # by digest
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)  # by digest

    def revoke_family(self, fid: str) -> None:
        family = self.families.get(fid)
        if family is None:
            return
        family.revoked = True
        for at in family.access_tokens:
            self.access_tokens.pop(at, None)
        for rt in [d for d, r in self.refresh_tokens.items() if r.family == fid]:
            del self.refresh_tokens[rt]

    def revoke_user(self, sub: str) -> None:
        """Sign a user out everywhere: sessions, and every token family they hold."""
        for sid in [s.sid for s in self.sessions.values() if s.sub == sub]:
            del self.sessions[sid]
        for fid in [f.fid for f in self.families.values() if f.sub == sub]:
            self.revoke_family(fid)

    def live_access_token(self, token: str, now: int) -> AccessToken | None:
        record = self.access_tokens.get(digest(token))
        if record is None or record.expires <= now:
            return None
        family = self.families.get(record.family)
        if family is None or family.revoked:
            return None
        return record
