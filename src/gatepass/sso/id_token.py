"""ID token validation (OIDC Core §3.1.3.7), stricter than Authlib's defaults.

Algorithms come from our own allow-list, never from the token: `none` and HMAC are refused
(an HMAC keyed with the IdP's *public* key is the classic key-confusion forgery). The key is
found by `kid`; a `kid` we do not hold refetches the JWKS once (rate-limited in `Directory`).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry

from gatepass.sso.discovery import Directory, ProviderMetadata
from gatepass.sso.errors import LoginError

if TYPE_CHECKING:
    from joserfc._rfc7515.model import JWSAlgModel  # not re-exported by joserfc.jws

# RFC 7518 §3 and RFC 8037: asymmetric signatures only, each with the key type it needs.
ALLOWED_ALGORITHMS: dict[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "EdDSA": "OKP",
}
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")  # RFC 9068 §2.1: not an ID token

HINT = "Ask your administrator to check this identity provider's settings."


class _Registry(JWSRegistry):
    """Allows exactly the algorithms it is given, and stays quiet about EdDSA: RFC 9864
    deprecates the name in favour of Ed25519, but IdPs still sign with it and a warning per
    sign-in helps nobody."""

    def get_alg(self, name: str) -> JWSAlgModel:
        if self.allowed is None or name not in self.allowed or name not in self.algorithms:
            raise JoseError(f"algorithm {name!r} is not allowed")
        return self.algorithms[name]


@dataclass(frozen=True, slots=True)
class Expected:
    """What a valid ID token from this IdP must say."""

    issuer: str
    client_id: str
    leeway: int  # seconds of clock skew tolerated
    nonce: str | None = None  # required and compared when given (sign-in, not refresh)
    subject: str | None = None  # on refresh: still the same person (OIDC Core §12.2)


def _refuse(reason: str, detail: str) -> LoginError:
    return LoginError(
        reason,
        "The identity provider's answer failed Gatepass's security checks.",
        hint=HINT,
        detail=detail,
    )


def read_header(token: str) -> tuple[jws.CompactSignature, dict[str, Any]]:
    """Split the compact JWS and return it with its protected header (not yet verified)."""
    try:
        obj = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError) as exc:
        raise _refuse("id_token_malformed", f"{type(exc).__name__}") from exc
    return obj, dict(obj.headers())


def check_algorithm(header: dict[str, Any]) -> str:
    """The header's `alg`, if it is on our allow-list (OIDC Core §3.1.3.7 steps 6-8)."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise _refuse("id_token_algorithm", f"alg {alg!r} is not allowed")
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() in ACCESS_TOKEN_TYPES:
        raise _refuse("id_token_type", f"typ {typ!r} is an access token")
    return alg


def pick_key(header: dict[str, Any], alg: str, keys: tuple[Key, ...]) -> Key | None:
    """The key named by `kid`, or None when the set lacks it.

    Without a `kid` the set must hold exactly one key: OIDC Core §10.1 requires a `kid`
    whenever the JWKS has several, and guessing among them is how confusion attacks start.
    """
    kid = header.get("kid")
    if kid is None:
        if len(keys) != 1:
            raise _refuse("id_token_no_kid", f"no kid and {len(keys)} keys in the JWKS")
        candidates = list(keys)
    elif not isinstance(kid, str):
        raise _refuse("id_token_malformed", "kid is not a string")
    else:
        candidates = [key for key in keys if key.kid == kid]
        if not candidates:
            return None
    key = candidates[0]
    if key.key_type != ALLOWED_ALGORITHMS[alg] or key.get("alg", alg) != alg:
        raise _refuse("id_token_key_mismatch", f"key {key.kid!r} is not a {alg} key")
    return key


def verify_signature(obj: jws.CompactSignature, key: Key, alg: str) -> dict[str, Any]:
    """The verified claims, or a refusal."""
    registry = _Registry(algorithms=[alg], strict_check_header=False)
    try:
        valid = jws.validate_compact(obj, key, algorithms=[alg], registry=registry)
    except (JoseError, ValueError, TypeError) as exc:
        raise _refuse("id_token_signature", f"{type(exc).__name__}") from exc
    if not valid:
        raise _refuse("id_token_signature", "signature does not verify")
    try:
        claims = json.loads(obj.payload or b"")
    except ValueError as exc:
        raise _refuse("id_token_malformed", "payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise _refuse("id_token_malformed", "payload is not a JSON object")
    return claims


def _number(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse("id_token_claims", f"{name} is missing or not a number")
    return float(value)


def check_claims(claims: dict[str, Any], expected: Expected, *, now: float) -> None:
    """OIDC Core §3.1.3.7 steps 2-5, 9-11 (and §12.2 on refresh)."""
    if claims.get("iss") != expected.issuer:  # step 2: exact match
        raise _refuse("id_token_issuer", f"iss {claims.get('iss')!r}")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _refuse("id_token_audience", "aud is missing or malformed")
    if expected.client_id not in audiences:  # step 3
        raise _refuse("id_token_audience", f"aud {audiences!r} lacks our client id")
    azp = claims.get("azp")
    if azp is not None and azp != expected.client_id:  # step 5
        raise _refuse("id_token_azp", f"azp {azp!r}")
    if len(audiences) > 1 and azp is None:  # step 4
        raise _refuse("id_token_azp", "several audiences and no azp")
    untrusted = [a for a in audiences if a != expected.client_id]
    if untrusted:  # step 3: "or if it contains additional audiences not trusted"
        raise _refuse("id_token_audience", f"untrusted audiences {untrusted!r}")
    leeway = expected.leeway
    exp = _number(claims, "exp", required=True)
    assert exp is not None
    if now > exp + leeway:  # step 9
        raise _refuse("id_token_expired", f"expired {now - exp:.0f} s ago")
    iat = _number(claims, "iat", required=True)
    assert iat is not None
    if iat > now + leeway:  # step 10: issued in the future
        raise _refuse("id_token_iat", f"iat {iat - now:.0f} s in the future")
    nbf = _number(claims, "nbf", required=False)
    if nbf is not None and nbf > now + leeway:
        raise _refuse("id_token_nbf", "not valid yet")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise _refuse("id_token_subject", "sub is missing or malformed")
    if expected.subject is not None and subject != expected.subject:
        raise _refuse("id_token_subject", "sub changed")
    if expected.nonce is not None:  # step 11
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(
            nonce.encode(), expected.nonce.encode()
        ):
            raise _refuse("id_token_nonce", "nonce missing" if nonce is None else "nonce differs")


async def validate_id_token(
    token: str,
    *,
    directory: Directory,
    metadata: ProviderMetadata,
    expected: Expected,
    now: float,
) -> dict[str, Any]:
    """The ID token's claims after every check; raises `LoginError` otherwise."""
    obj, header = read_header(token)
    alg = check_algorithm(header)
    key = pick_key(header, alg, await directory.keys(metadata))
    if key is None:  # unknown kid: the IdP may have rotated its keys since we fetched them
        key = pick_key(header, alg, await directory.keys(metadata, refresh=True))
    if key is None:
        raise _refuse("id_token_unknown_kid", f"kid {header.get('kid')!r} not in the JWKS")
    claims = verify_signature(obj, key, alg)
    check_claims(claims, expected, now=now)
    return claims
