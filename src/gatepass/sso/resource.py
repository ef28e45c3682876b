"""Gatepass as a resource server for tokens the corporate IdP issued itself (DESIGN way 2).

Claude Desktop pointed at the corporate IdP sends that IdP's id_token (`aud` = the desktop
app's client id there) or access token (`aud` = an API audience) as `Authorization: Bearer`.
An IdP connection accepts such tokens only for the audiences configured on it
(`gatepass idps add --audience`); with none, none of its tokens are accepted.

Validation is offline once the issuer's keys are cached (the relying party's `Directory`:
an unknown `kid` refetches the JWKS at most once per interval): our algorithm allow-list
(never `none` or HMAC), the key by `kid` (no `kid` only with a single key), the signature,
`iss` exactly, the audience, `exp`/`nbf`/`iat` with `sign_in.clock_skew` of leeway, `sub`.
Then the person goes through the same rules as at sign-in: email checked against the
connection's domains (and verification), groups from its groups claim (cut-short lists are
incomplete and cannot match group mappings), the same mappings, a usable key, and no
disabled user row at that issuer for the subject (or Entra `oid`) or the email.

Decisions are cached per token until it expires (bounded), and the connections, mappings
and users they read are cached too; `invalidate()` (the change epoch) drops all of it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gatepass.policy.keys import KeyCheck, principal_from_row
from gatepass.sso.claims import check_email, extract_groups
from gatepass.sso.discovery import Directory
from gatepass.sso.errors import IdpUnavailable, LoginError
from gatepass.sso.http import IdpHttp
from gatepass.sso.id_token import ALLOWED_ALGORITHMS, pick_key, read_header, verify_signature
from gatepass.sso.people import NoAccess, choose_key
from gatepass.store import identity_queries, sso_queries
from gatepass.store.identity import GroupMapping, IdpConnection
from gatepass.store.models import VirtualKey

if TYPE_CHECKING:
    from gatepass.runtime import Gateway

log = logging.getLogger("gatepass.sso")

MAX_DECISIONS = 10_000  # cached per-token decisions; the cache is emptied when full
CLIENT_CLAIMS = ("azp", "cid", "client_id")  # where IdPs name the client, when `aud` is absent


@dataclass(frozen=True, slots=True)
class Validated:
    """A token whose signature and claims hold, and the connection whose audience it names."""

    idp: IdpConnection
    claims: dict[str, Any]
    audience: str


@dataclass(frozen=True, slots=True)
class _Decision:
    check: KeyCheck
    until: float  # wall-clock seconds: the token's exp plus leeway


def _refuse(reason: str, detail: str) -> LoginError:
    return LoginError(reason, "The token failed Gatepass's checks.", detail=detail)


def _number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse("token_claims", f"{name} is missing or not a number")
    return float(value)


def match_audience(claims: dict[str, Any], audiences: Sequence[str]) -> str | None:
    """The configured audience this token was issued for, or None.

    `aud` decides whenever it is present: one of its values must be configured (RFC 9068
    §4, RFC 7519 §4.1.3). Only a token without `aud` is matched on the client it was issued
    to (`azp`, Okta's `cid`, RFC 9068's `client_id`): a token whose `aud` names another
    resource must not be let in because the desktop app asked for it.
    """
    aud = claims.get("aud")
    if aud is not None:
        values = [aud] if isinstance(aud, str) else aud
        if not isinstance(values, list) or not all(isinstance(a, str) for a in values):
            raise _refuse("token_audience", "aud is malformed")
        return next((a for a in values if a in audiences), None)
    for name in CLIENT_CLAIMS:
        client = claims.get(name)
        if isinstance(client, str):
            return client if client in audiences else None
    return None


def check_times(claims: dict[str, Any], *, leeway: int, now: float) -> float:
    """`exp`, `iat` (both required) and `nbf`, with leeway; returns `exp`."""
    exp = _number(claims, "exp", required=True)
    assert exp is not None
    if now > exp + leeway:
        raise _refuse("token_expired", f"expired {now - exp:.0f} s ago")
    iat = _number(claims, "iat", required=True)
    assert iat is not None
    if iat > now + leeway:
        raise _refuse("token_iat", f"iat {iat - now:.0f} s in the future")
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and nbf > now + leeway:
        raise _refuse("token_nbf", "not valid yet")
    return exp


def subjects(claims: dict[str, Any]) -> tuple[str, ...]:
    """Who the token is about: `sub`, and Entra ID's tenant-wide `oid` when it has one
    (Entra's `sub` differs per application, `oid` is the same for every app)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise _refuse("token_subject", "sub is missing or malformed")
    oid = claims.get("oid")
    if isinstance(oid, str) and oid and len(oid) <= 255 and "tid" in claims and oid != subject:
        return subject, oid
    return (subject,)


async def validate(
    token: str,
    *,
    directory: Directory,
    issuer: str,
    connections: Sequence[IdpConnection],
    leeway: int,
    now: float,
) -> Validated:
    """Check a token from `issuer` against the keys it publishes and the connections'
    audiences; raises `LoginError` (`IdpUnavailable` when its keys cannot be fetched)."""
    obj, header = read_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:  # never none, never HMAC
        raise _refuse("token_algorithm", f"alg {alg!r} is not allowed")
    metadata = await directory.metadata(issuer)
    key = pick_key(header, alg, await directory.keys(metadata))
    if key is None:  # unknown kid: a rotation, or a forgery; refetching is rate-limited
        key = pick_key(header, alg, await directory.keys(metadata, refresh=True))
    if key is None:
        raise _refuse("token_unknown_kid", f"kid {header.get('kid')!r} not in the JWKS")
    claims = verify_signature(obj, key, alg)
    if claims.get("iss") != issuer:
        raise _refuse("token_issuer", f"iss {claims.get('iss')!r}")
    for idp in connections:
        audience = match_audience(claims, idp.audiences)
        if audience is not None:
            break
    else:
        raise _refuse("token_audience", f"aud {claims.get('aud')!r} is not configured")
    check_times(claims, leeway=leeway, now=now)
    subjects(claims)
    return Validated(idp, claims, audience)


class ResourceServer:
    """Checks Bearer tokens issued by the IdPs of connections with audiences. Constructed
    by `SsoService` (sharing its outbound pool and key cache) and handed to
    `gateway.tokens`, which sends it every token whose unverified `iss` is not Gatepass's."""

    def __init__(
        self,
        gateway: Gateway,
        http: IdpHttp,
        directory: Directory,
        *,
        max_decisions: int = MAX_DECISIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.http = http
        self.directory = directory
        self.max_decisions = max_decisions
        self.clock = clock
        self._decisions: dict[bytes, _Decision] = {}
        self._connections: dict[str, list[IdpConnection]] | None = None
        self._mappings: dict[int, list[tuple[GroupMapping, VirtualKey]]] = {}
        self._disabled: dict[tuple[str, tuple[str, ...], str], bool] = {}

    def invalidate(self) -> None:
        """Forget every decision and lookup (called through `gateway.tokens.invalidate()`)."""
        self._decisions.clear()
        self._connections = None
        self._mappings.clear()
        self._disabled.clear()

    async def check(self, token: str, issuer: str) -> KeyCheck:
        """The principal behind an IdP-issued token; `issuer` is the token's unverified `iss`,
        used only to choose the keys to verify it with."""
        digest = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        cached = self._decisions.get(digest)
        if cached is not None and now <= cached.until:
            return _current(cached.check)
        connections = (await self._load_connections()).get(issuer)
        if not connections:
            return KeyCheck(None, "invalid_token")
        settings = self.gateway.settings.sign_in
        try:
            valid = await validate(
                token,
                directory=self.directory,
                issuer=issuer,
                connections=connections,
                leeway=settings.clock_skew,
                now=now,
            )
        except IdpUnavailable:
            raise  # the token may be fine: the proxy answers 503, the client retries
        except LoginError as error:
            log.info("IdP token refused: %s (%s)", error.reason, error.detail)
            return KeyCheck(None, "invalid_token")
        check = await self._decide(valid)
        exp = valid.claims["exp"]
        if len(self._decisions) >= self.max_decisions:
            self._decisions.clear()
        self._decisions[digest] = _Decision(check, float(exp) + settings.clock_skew)
        return _current(check)

    async def _decide(self, valid: Validated) -> KeyCheck:
        """The same rules as a sign-in: email, groups, disabled users, mappings, the key."""
        idp, claims = valid.idp, valid.claims
        settings = self.gateway.settings.sign_in
        try:
            email = check_email(
                claims,
                allowed_domains=idp.allowed_domains,
                require_verified=idp.require_verified_email,
            )
        except LoginError as error:
            log.info("IdP token from %s refused: %s", idp.name, error.reason)
            return KeyCheck(None, "invalid_token")
        if await self._is_disabled(idp.issuer, subjects(claims), email):
            return KeyCheck(None, "user_disabled")
        groups = extract_groups(claims, idp.groups_claim, max_groups=settings.max_groups)
        assert idp.id is not None
        found = choose_key(
            await self._load_mappings(idp.id),
            email=email,
            groups=groups.values,
            groups_complete=groups.complete,
            now=datetime.now(UTC),
        )
        if isinstance(found, NoAccess):
            log.info("IdP token from %s for %s refused: %s", idp.name, email, found.reason)
            return KeyCheck(None, "invalid_token")
        _, key = found
        return KeyCheck(replace(principal_from_row(key), user_email=email))

    async def _load_connections(self) -> dict[str, list[IdpConnection]]:
        if self._connections is None:
            async with self.gateway.sessions() as session:
                idps = await identity_queries.list_idps(session)
            by_issuer: dict[str, list[IdpConnection]] = {}
            for idp in idps:
                if idp.audiences:
                    by_issuer.setdefault(idp.issuer, []).append(idp)
            self._connections = by_issuer
        return self._connections

    async def _load_mappings(self, idp_id: int) -> list[tuple[GroupMapping, VirtualKey]]:
        rows = self._mappings.get(idp_id)
        if rows is None:
            async with self.gateway.sessions() as session:
                found = await identity_queries.list_mappings(session, idp_id=idp_id)
            rows = self._mappings[idp_id] = [(mapping, key) for mapping, _, key in found]
        return rows

    async def _is_disabled(self, issuer: str, subject_ids: tuple[str, ...], email: str) -> bool:
        """Whether Gatepass knows this person at `issuer` (by subject, or by email: an
        administrator disables by email) and has disabled them."""
        cache_key = (issuer, subject_ids, email)
        disabled = self._disabled.get(cache_key)
        if disabled is None:
            async with self.gateway.sessions() as session:
                disabled = await sso_queries.any_disabled_user(
                    session, issuer=issuer, subjects=subject_ids, email=email
                )
            if len(self._disabled) >= self.max_decisions:
                self._disabled.clear()
            self._disabled[cache_key] = disabled
        return disabled


def _current(check: KeyCheck) -> KeyCheck:
    """A cached decision, re-checked against the key's own expiry."""
    expires_at = None if check.principal is None else check.principal.expires_at
    if expires_at is not None and expires_at <= datetime.now(UTC):
        return KeyCheck(None, "expired")
    return check
