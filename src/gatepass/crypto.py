"""Keys derived from the server secret: virtual-key hashing and encryption of stored secrets.

Virtual keys and tokens are stored as HMAC-SHA256 digests keyed with a subkey of the server
secret, so a leaked database cannot be brute-forced offline without the secret, and a lookup
is one indexed equality query. Provider keys and IdP client secrets are encrypted with Fernet
under another subkey; they must be readable again to call upstream.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VIRTUAL_KEY_PREFIX = "gp-"
VISIBLE_PREFIX_LENGTH = 10  # characters of the secret kept in clear for people to recognise


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted: the server secret changed or the row is corrupt."""


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


class Keyring:
    """Everything that needs the server secret, derived once at start-up."""

    def __init__(self, secret: str) -> None:
        self._hash_key = _derive(secret, b"gatepass/credential-hash/v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"gatepass/at-rest/v1")))

    def hash_credential(self, credential: str) -> str:
        """Keyed digest used to store and look up virtual keys and tokens."""
        return hmac.new(self._hash_key, credential.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptionError("stored secret cannot be decrypted") from exc


def new_virtual_key() -> str:
    """A fresh virtual key: `gp-` and 43 URL-safe characters (256 bits)."""
    return VIRTUAL_KEY_PREFIX + secrets.token_urlsafe(32)


def visible_prefix(secret: str) -> str:
    return secret[:VISIBLE_PREFIX_LENGTH]
