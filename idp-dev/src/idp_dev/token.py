"""Token endpoint: authorization code with PKCE and rotating refresh tokens (RFC 6749 §4.1.3, §6)."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc7636 import (  # type: ignore[import-untyped, unused-ignore]
    create_s256_code_challenge,
)
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp_dev.authorize import CHALLENGE
from idp_dev.claims import access_token_claims, id_token_claims
from idp_dev.client_auth import authenticate_client, single
from idp_dev.config import Client, User
from idp_dev.errors import NO_STORE, OAuthProblem, json_error
from idp_dev.grants import AccessToken, RefreshToken, TokenFamily, digest, new_secret
from idp_dev.jws import sign
from idp_dev.provider import Provider


@dataclass
class TokenEndpoint:
    provider: Provider

    async def handle(self, request: Request) -> Response:
        switches = self.provider.switches
        if switches.token_delay:
            await asyncio.sleep(switches.token_delay)
        if switches.token_failure_status is not None:
            body = {"error": "temporarily_unavailable", "error_description": "idp-dev switch"}
            return JSONResponse(body, status_code=switches.token_failure_status, headers=NO_STORE)
        try:
            form = await request.form()
            client = authenticate_client(self.provider, request, form)
            grant_type = single(form, "grant_type")
            if grant_type == "authorization_code":
                body = self._redeem_code(client, form)
            elif grant_type == "refresh_token":
                body = self._refresh(client, form)
            else:
                raise OAuthProblem("unsupported_grant_type", f"grant_type {grant_type!r}")
        except OAuthProblem as problem:
            return json_error(problem)
        return JSONResponse(body, headers=NO_STORE)

    def _redeem_code(self, client: Client, form: FormData) -> dict[str, Any]:
        code = single(form, "code") or ""
        redirect_uri = single(form, "redirect_uri")
        verifier = single(form, "code_verifier")
        provider = self.provider
        with provider.lock:
            record = provider.grants.codes.get(digest(code))
            if record is None:
                raise OAuthProblem("invalid_grant", "unknown authorization code")
            if record.redeemed:
                # RFC 6749 §4.1.2: a replayed code revokes what its first use issued.
                if record.family is not None:
                    provider.grants.revoke_family(record.family)
                raise OAuthProblem("invalid_grant", "authorization code already used")
            record.redeemed = True  # single use, whatever happens next
            if record.expires <= provider.clock.now():
                raise OAuthProblem("invalid_grant", "authorization code expired")
            if record.client_id != client.client_id:
                raise OAuthProblem("invalid_grant", "code was issued to another client")
            if redirect_uri != record.redirect_uri:
                raise OAuthProblem("invalid_grant", "redirect_uri does not match")
            _check_pkce(record.code_challenge, record.code_challenge_method, verifier)
            user = provider.users.get(record.sub)
            if user is None or user.disabled:
                raise OAuthProblem("invalid_grant", "user is disabled")
            family = TokenFamily(
                fid=new_secret(),
                client_id=client.client_id,
                sub=user.sub,
                scopes=record.scopes,
                auth_time=record.auth_time,
            )
            provider.grants.families[family.fid] = family
            record.family = family.fid
            return self._issue(client, user, family, nonce=record.nonce)

    def _refresh(self, client: Client, form: FormData) -> dict[str, Any]:
        token = single(form, "refresh_token") or ""
        requested = single(form, "scope")
        provider = self.provider
        with provider.lock:
            record = provider.grants.refresh_tokens.get(digest(token))
            family = provider.grants.families.get(record.family) if record else None
            if record is None or family is None or family.revoked:
                raise OAuthProblem("invalid_grant", "unknown or revoked refresh token")
            if family.client_id != client.client_id:
                raise OAuthProblem("invalid_grant", "refresh token was issued to another client")
            if record.used:
                # RFC 9700 §4.14.2: reuse of a rotated token revokes the whole family.
                provider.grants.revoke_family(family.fid)
                raise OAuthProblem("invalid_grant", "refresh token already used")
            if record.expires <= provider.clock.now():
                raise OAuthProblem("invalid_grant", "refresh token expired")
            user = provider.users.get(family.sub)
            if user is None or user.disabled:
                provider.grants.revoke_family(family.fid)
                raise OAuthProblem("invalid_grant", "user is disabled")
            scopes = family.scopes
            if requested is not None:
                narrowed = tuple(dict.fromkeys(requested.split()))
                if not set(narrowed) <= set(family.scopes):
                    raise OAuthProblem("invalid_scope", "scope exceeds the original grant")
                scopes = narrowed
            record.used = True
            return self._issue(client, user, family, nonce=None, scopes=scopes)

    def _issue(
        self,
        client: Client,
        user: User,
        family: TokenFamily,
        *,
        nonce: str | None,
        scopes: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """Access token, refresh token and (for `openid`) ID token, all in `family`."""
        provider = self.provider
        switches = provider.switches
        scopes = family.scopes if scopes is None else scopes
        alg = provider.signing_alg(client)
        jti = new_secret(16)
        at_claims = access_token_claims(
            provider, user=user, client=client, scopes=scopes, jti=jti, switches=switches
        )
        at_switches = switches if switches.apply_to_access_tokens else None
        access_token = sign(
            at_claims, keys=provider.keys, alg=alg, typ="at+jwt", switches=at_switches
        )
        now = provider.clock.now()
        at_digest = digest(access_token)
        provider.grants.access_tokens[at_digest] = AccessToken(
            family=family.fid,
            client_id=client.client_id,
            sub=user.sub,
            scopes=scopes,
            expires=now + provider.config.access_token_ttl,
        )
        family.access_tokens.add(at_digest)
        refresh_token = new_secret()
        provider.grants.refresh_tokens[digest(refresh_token)] = RefreshToken(
            family=family.fid, expires=now + provider.config.refresh_token_ttl
        )
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": provider.config.access_token_ttl,
            "refresh_token": refresh_token,
            "scope": " ".join(scopes),
        }
        if "openid" in scopes:
            claims = id_token_claims(
                provider,
                user=user,
                client=client,
                scopes=scopes,
                nonce=nonce,
                auth_time=family.auth_time,
                access_token=access_token,
                switches=switches,
            )
            body["id_token"] = sign(claims, keys=provider.keys, alg=alg, switches=switches)
        return body


def _check_pkce(challenge: str | None, method: str | None, verifier: str | None) -> None:
    """RFC 7636 §4.6; and a verifier without a challenge is a downgrade (RFC 9700 §2.1.1)."""
    if challenge is None:
        if verifier is not None:
            raise OAuthProblem("invalid_grant", "code_verifier sent but no code_challenge was")
        return
    if verifier is None or not CHALLENGE.match(verifier):
        raise OAuthProblem("invalid_grant", "code_verifier missing or malformed")
    computed = create_s256_code_challenge(verifier) if method == "S256" else verifier
    if not hmac.compare_digest(str(computed).encode(), challenge.encode()):
        raise OAuthProblem("invalid_grant", "code_verifier does not match code_challenge")
