"""Re-checking a person on every refresh of their Gatepass tokens.

Locally: still enabled, still mapped, the key still usable (the mapping is resolved again,
so the key may change). At the IdP, when we hold its refresh token: refresh there (rotating
what we store), read the fresh ID token or userinfo, and update email and groups. The IdP
saying `invalid_grant` (person disabled, session revoked) ends the session; the IdP being
unreachable keeps it only while the last good check is within `idp_recheck_grace`.

Refreshes for one person are serialised, in this process by a lock and across replicas by a
lease on the person's row: the IdP rotates its refresh token, and two concurrent uses of the
same one would look like token theft (and revoke it all). A replica that waited for another's
recheck uses what that one stored instead of asking the IdP again.

After `invalid_grant` the IdP no longer vouches for the person: every session of theirs is
refused (not only the one that asked) until they sign in again.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gatepass.identity import Recheck
from gatepass.sso import audit, exchange
from gatepass.sso.assertion import read_person
from gatepass.sso.claims import Person
from gatepass.sso.discovery import Directory
from gatepass.sso.errors import IdpUnavailable, LoginError
from gatepass.sso.exchange import TokenRefused
from gatepass.sso.http import IdpHttp
from gatepass.sso.id_token import Expected
from gatepass.sso.people import Access, resolve_access, signed_in, update_profile
from gatepass.store import identity_queries, sso_queries
from gatepass.store.identity import IdpConnection, User
from gatepass.store.types import utcnow

if TYPE_CHECKING:
    from gatepass.runtime import Gateway


@dataclass(frozen=True, slots=True)
class _Answer:
    """What the IdP said: a fresh person (or None: nothing new), and the token to keep."""

    person: Person | None
    refresh_token: str


class _Denied(Exception):
    def __init__(self, reason: str, *, forget_token: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.forget_token = forget_token


LEASE = timedelta(seconds=30)  # longer than one IdP refresh can take (its HTTP timeouts)
LEASE_POLL = 0.05  # seconds between tries while another replica holds the lease


class Rechecker:
    def __init__(self, gateway: Gateway, http: IdpHttp, directory: Directory) -> None:
        self.gateway = gateway
        self.http = http
        self.directory = directory
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def recheck(self, user_id: int, auth_time: datetime) -> Recheck:
        """Whether the person may keep their session, with their current key."""
        asked_since = utcnow()  # an IdP answer stored after this is as good as our own
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        async with lock:
            until = await self._take_lease(user_id)
            try:
                return await self._recheck(user_id, auth_time, asked_since)
            except _Denied as denied:
                await self._deny(user_id, denied)
                return Recheck(status="denied", reason=denied.reason)
            finally:
                async with self.gateway.sessions() as session:
                    await sso_queries.release_recheck_lease(session, user_id=user_id, until=until)
                    await session.commit()

    async def _take_lease(self, user_id: int) -> datetime:
        """Wait until this replica holds the person's lease (a crashed holder's lapses)."""
        while True:
            now = utcnow()
            until = now + LEASE
            async with self.gateway.sessions() as session:
                taken = await sso_queries.claim_recheck_lease(
                    session, user_id=user_id, now=now, until=until
                )
                await session.commit()
                # an unknown person has no row to lease; `_recheck` refuses them
                if taken or await identity_queries.get_user(session, user_id=user_id) is None:
                    return until
            await asyncio.sleep(LEASE_POLL)

    async def _recheck(self, user_id: int, auth_time: datetime, asked_since: datetime) -> Recheck:
        gateway = self.gateway
        async with gateway.sessions() as session:
            user = await identity_queries.get_user(session, user_id=user_id)
            if user is None:
                raise _Denied("user_unknown")
            if user.disabled:
                raise _Denied("user_disabled")
            idp = await identity_queries.get_idp_by_id(session, idp_id=user.idp_id)
            if idp is None:
                raise _Denied("idp_removed")
        if user.idp_grant_lost_at is not None:
            raise _Denied("idp_grant_lost")  # until they sign in again
        answer = None
        # a replica that held the lease while we waited asked the IdP and stored the answer
        fresh = user.last_idp_check_at is not None and user.last_idp_check_at >= asked_since
        if user.upstream_refresh_token_encrypted and not fresh:
            answer = await self._ask_idp(idp, user)
        now = utcnow()
        async with gateway.sessions() as session:
            user = await identity_queries.get_user(session, user_id=user_id)
            if user is None or user.disabled:
                raise _Denied("user_disabled")
            if answer is not None:
                user.upstream_refresh_token_encrypted = gateway.keyring.encrypt(
                    answer.refresh_token
                )
                user.last_idp_check_at = now
                if answer.person is not None:
                    update_profile(
                        user,
                        email=answer.person.email,
                        name=answer.person.name,
                        groups=answer.person.groups,
                    )
                sso_queries.save_user(session, user)
            assert idp.id is not None
            access = await resolve_access(session, idp_id=idp.id, user=user, now=now)
            await session.commit()
        if not isinstance(access, Access):
            raise _Denied(access.reason)
        return Recheck(
            status="ok",
            identity=signed_in(user, idp_name=idp.name, access=access, auth_time=auth_time),
        )

    async def _ask_idp(self, idp: IdpConnection, user: User) -> _Answer | None:
        """Refresh at the IdP; None when it is unreachable but the grace period holds."""
        keyring = self.gateway.keyring
        settings = self.gateway.settings.sign_in
        assert user.upstream_refresh_token_encrypted is not None
        try:
            metadata = await self.directory.metadata(idp.issuer)
            token = await exchange.refresh(
                self.http,
                token_endpoint=metadata.token_endpoint,
                client_id=idp.client_id,
                client_secret=(
                    keyring.decrypt(idp.client_secret_encrypted)
                    if idp.client_secret_encrypted
                    else None
                ),
                refresh_token=keyring.decrypt(user.upstream_refresh_token_encrypted),
            )
            person = await read_person(
                token,
                http=self.http,
                directory=self.directory,
                metadata=metadata,
                idp=idp,
                expected=Expected(
                    issuer=idp.issuer,
                    client_id=idp.client_id,
                    leeway=settings.clock_skew,
                    subject=user.subject,
                ),
                max_groups=settings.max_groups,
            )
        except IdpUnavailable as unavailable:
            last = user.last_idp_check_at
            grace = timedelta(seconds=settings.idp_recheck_grace)
            if last is not None and utcnow() - last <= grace:
                audit.log.warning("IdP %s unavailable (%s); within grace", idp.name, unavailable)
                return None
            raise _Denied("idp_unavailable") from unavailable
        except TokenRefused as refused:
            # RFC 6749 §5.2: invalid_grant means the grant is gone (revoked, user disabled).
            gone = refused.error == "invalid_grant"
            raise _Denied(f"idp_{refused.error}", forget_token=gone) from refused
        except LoginError as error:
            raise _Denied(error.reason) from error
        new_token = token.get("refresh_token")
        keep = new_token if isinstance(new_token, str) and new_token else None
        return _Answer(
            person=person,
            refresh_token=keep or keyring.decrypt(user.upstream_refresh_token_encrypted),
        )

    async def _deny(self, user_id: int, denied: _Denied) -> None:
        if denied.forget_token:
            async with self.gateway.sessions() as session:
                user = await identity_queries.get_user(session, user_id=user_id)
                if user is not None:
                    user.upstream_refresh_token_encrypted = None
                    user.idp_grant_lost_at = utcnow()
                    sso_queries.save_user(session, user)
                    await session.commit()
        await audit.record(
            self.gateway.sessions,
            action="session.denied",
            outcome="denied",
            idp_name=None,
            actor=str(user_id),
            reason=denied.reason,
        )
