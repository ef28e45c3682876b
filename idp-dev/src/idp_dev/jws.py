"""Compact JWS signing, honest by default and forged on request (RFC 7515, RFC 7518)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import RSAKey
from joserfc.util import urlsafe_b64decode, urlsafe_b64encode

from idp_dev.keys import KeyRing
from idp_dev.switches import UNKNOWN_KID, Switches


def _b64(data: bytes) -> str:
    return urlsafe_b64encode(data).decode("ascii")


def _b64json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def sign(
    claims: dict[str, Any],
    *,
    keys: KeyRing,
    alg: str,
    typ: str = "JWT",
    switches: Switches | None = None,
) -> str:
    """Sign `claims` with the active `alg` key, applying any signature-level defect."""
    sw = switches or Switches()
    key = keys.signing_key(alg)
    if sw.alg_none:
        # RFC 7518 §3.6: an Unsecured JWS has an empty signature.
        return f"{_b64json({'alg': 'none', 'typ': typ})}.{_b64json(claims)}."
    if sw.hs256_public_key:
        return _hs256_with_public_key(claims, keys, typ)
    header: dict[str, Any] = {"alg": alg, "typ": typ, "kid": key.kid}
    if sw.unknown_kid:
        header["kid"] = UNKNOWN_KID
    if sw.no_kid:
        del header["kid"]
    token = jwt.encode(header, claims, key, algorithms=[alg])
    if sw.bad_signature:
        token = _flip_signature(token)
    return token


def _hs256_with_public_key(claims: dict[str, Any], keys: KeyRing, typ: str) -> str:
    """The key-confusion forgery: HMAC-SHA256 keyed with the RS256 public key's PEM text."""
    rsa = keys.signing_key("RS256")
    assert isinstance(rsa, RSAKey)
    secret = public_pem(rsa)
    signing_input = f"{_b64json({'alg': 'HS256', 'typ': typ, 'kid': rsa.kid})}.{_b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def public_pem(key: RSAKey) -> bytes:
    """The SubjectPublicKeyInfo PEM an RP would hold for this key."""
    return key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(urlsafe_b64decode(signature.encode("ascii")))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{_b64(bytes(raw))}"
