"""Secrets at rest: the database never holds a provider key or a virtual key in clear."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy.engine import make_url
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.app import create_app
from gatepass.config import load_settings
from gatepass.crypto import Keyring, SecretDecryptionError
from gatepass.devtools.server import serve_in_thread
from gatepass.runtime import Gateway
from gatepass.store import queries
from tests.conftest import SECRET_KEY, UPSTREAM_KEY, Harness

OTHER_SECRET = "a-different-server-secret-0123456789"
SECOND_PROVIDER_KEY = "sk-ant-second-provider-key-abcdefghij"


def db_path(harness: Harness) -> Path:
    database = make_url(harness.settings.database_url).database
    assert database is not None
    return Path(database)


def raw_bytes(path: Path) -> bytes:
    """The database file and its WAL/SHM companions, as they lie on disk."""
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    assert path in files
    return b"".join(p.read_bytes() for p in files)


def all_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read with the stdlib driver (no Gatepass code involved)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: connection.execute(f'SELECT * FROM "{table}"').fetchall() for table in tables
        }


def assert_nowhere_in_store(path: Path, secrets: list[str]) -> None:
    on_disk = raw_bytes(path)
    rows = all_rows(path)
    assert {"provider", "model_route", "virtual_key", "request_log"} <= set(rows)
    for secret in secrets:
        assert secret.encode() not in on_disk, f"{secret[:8]}… found in the database file"
        assert base64.b64encode(secret.encode()) not in on_disk
        for table, table_rows in rows.items():
            for row in table_rows:
                for value in row:
                    text = (
                        value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    )
                    assert secret not in text, f"{secret[:8]}… found in table {table}"


def message(base: str, headers: dict[str, str], **body: Any) -> httpx2.Response:
    payload = {
        "model": "claude-haiku-4-5",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    payload.update(body)
    return httpx2.post(
        base + "/v1/messages", headers={"anthropic-version": "2023-06-01", **headers}, json=payload
    )


def test_database_holds_neither_provider_keys_nor_virtual_key_secrets(gatepass: Harness) -> None:
    async def add_second_provider(session: AsyncSession) -> None:
        await manage.add_provider(
            session,
            gatepass.keyring,
            name="second",
            kind="anthropic",
            base_url="https://api.example",
            api_key=SECOND_PROVIDER_KEY,
        )

    gatepass.store(add_second_provider)
    secrets = [gatepass.create_key("alpha"), gatepass.create_key("beta", models="claude-haiku-4-5")]
    rotated = gatepass.store(lambda s: manage.rotate_key(s, gatepass.keyring, name="beta"))
    secrets.append(rotated.secret)
    assert message(gatepass.base, {"x-api-key": secrets[0]}).status_code == 200
    assert message(gatepass.base, {"authorization": f"Bearer {secrets[2]}"}).status_code == 200
    gatepass.wait_for_logs(2)

    assert_nowhere_in_store(db_path(gatepass), [UPSTREAM_KEY, SECOND_PROVIDER_KEY, *secrets])

    # the keys are there, encrypted, and only the server secret opens them
    providers = {p.name: p for p in gatepass.store(queries.list_providers)}
    assert gatepass.keyring.decrypt(providers["fake"].api_key_encrypted) == UPSTREAM_KEY
    assert gatepass.keyring.decrypt(providers["second"].api_key_encrypted) == SECOND_PROVIDER_KEY


def test_virtual_key_hash_is_keyed_not_a_plain_digest(gatepass: Harness) -> None:
    secret = gatepass.create_key("ci")
    key = gatepass.store(lambda s: queries.get_key_by_name(s, name="ci"))
    assert key is not None
    stored = key.secret_hash
    assert len(stored) == 64
    assert stored != hashlib.sha256(secret.encode()).hexdigest()
    assert stored != hmac.new(b"", secret.encode(), hashlib.sha256).hexdigest()
    assert stored != hmac.new(SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()
    assert stored != hashlib.sha256((SECRET_KEY + secret).encode()).hexdigest()
    assert stored == Keyring(SECRET_KEY).hash_credential(secret)
    assert stored != Keyring(OTHER_SECRET).hash_credential(secret)
    assert key.prefix == secret[:10]


def test_request_logs_and_the_upstream_never_see_client_secrets(gatepass: Harness) -> None:
    secret = gatepass.create_key("ci")
    stray = "sk-ant-api03-client-side-key-that-must-not-leak"
    responses = [
        message(gatepass.base, {"x-api-key": secret}),
        message(gatepass.base, {"authorization": f"Bearer {secret}"}),
        message(gatepass.base, {"x-api-key": secret, "authorization": f"Bearer {stray}"}),
        message(gatepass.base, {"x-api-key": secret}, stream=True),
        message(gatepass.base, {"x-api-key": secret}, model="sonnet"),
    ]
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    refused = message(gatepass.base, {"x-api-key": secret[:-2] + "zz"})
    assert refused.status_code == 401
    assert secret[:-2] not in refused.text
    rows = gatepass.wait_for_logs(5)
    assert len(rows) == 5
    assert {row.key_name for row in rows} == {"ci"}
    forbidden = [secret, stray, UPSTREAM_KEY, secret[:-2]]
    for row in rows:
        for column, value in row.model_dump().items():
            for text in forbidden:
                assert text not in str(value), f"request_log.{column} holds a secret"
    assert_nowhere_in_store(db_path(gatepass), [secret, stray, UPSTREAM_KEY])

    # upstream gets the provider key only, never the client's credentials
    assert len(gatepass.fake.requests) == 5
    for received in gatepass.fake.requests:
        assert received.header("x-api-key") == UPSTREAM_KEY
        assert received.header("authorization") is None
        seen = repr(received.headers) + received.body.decode(errors="replace")
        assert secret not in seen
        assert stray not in seen


def test_provider_key_encrypted_under_another_secret_is_skipped_not_used(
    gatepass: Harness,
) -> None:
    foreign = Keyring(OTHER_SECRET)

    async def add_foreign_provider(session: AsyncSession) -> None:
        await manage.add_provider(
            session,
            foreign,
            name="foreign",
            kind="anthropic",
            base_url=gatepass.upstream.url,
            api_key=SECOND_PROVIDER_KEY,
        )
        await manage.add_model(session, model_id="claude-foreign", provider="foreign")

    gatepass.store(add_foreign_provider)
    provider = gatepass.store(lambda s: queries.get_provider(s, name="foreign"))
    assert provider is not None
    with pytest.raises(SecretDecryptionError):
        gatepass.keyring.decrypt(provider.api_key_encrypted)
    gatepass.refresh_catalog()

    secret = gatepass.create_key("ci")
    response = message(gatepass.base, {"x-api-key": secret}, model="claude-foreign")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert gatepass.fake.requests == []
    listed = httpx2.get(gatepass.base + "/v1/models", headers={"x-api-key": secret}).json()
    assert "claude-foreign" not in [m["id"] for m in listed["data"]]
    # the providers whose keys do decrypt are unaffected
    assert message(gatepass.base, {"x-api-key": secret}).status_code == 200
    assert gatepass.fake.requests[-1].header("x-api-key") == UPSTREAM_KEY


@contextlib.contextmanager
def gateway_with_secret(harness: Harness, secret_key: str) -> Iterator[tuple[Gateway, str]]:
    """A second Gatepass on the same database, started with another server secret."""
    settings = load_settings(
        environ={},
        environment="development",
        database_url=harness.settings.database_url,
        secret_key=secret_key,
        key_cache_ttl=0,
    )
    gateway = Gateway(settings)
    with serve_in_thread(create_app(settings, gateway)) as url:
        yield gateway, url + "/anthropic"


def test_gateway_with_the_wrong_secret_serves_no_model_rather_than_a_garbage_key(
    gatepass: Harness,
) -> None:
    async def key_hashed_for_other_secret(session: AsyncSession) -> str:
        issued = await manage.create_key(session, Keyring(OTHER_SECRET), name="other", models="*")
        return issued.secret

    other_secret_key = gatepass.store(key_hashed_for_other_secret)
    original_key = gatepass.create_key("original")
    with gateway_with_secret(gatepass, OTHER_SECRET) as (gateway, base):
        assert gateway.catalog.ordered() == []
        # keys hashed under the old secret no longer match anything
        assert message(base, {"x-api-key": original_key}).status_code == 401
        response = message(base, {"x-api-key": other_secret_key})
        assert response.status_code == 404
        assert "claude-haiku-4-5" in response.json()["error"]["message"]
        listed = httpx2.get(base + "/v1/models", headers={"x-api-key": other_secret_key})
        assert listed.json()["data"] == []
    assert gatepass.fake.requests == []
    # the original gateway, with the right secret, still works
    assert message(gatepass.base, {"x-api-key": original_key}).status_code == 200
