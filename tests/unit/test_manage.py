"""Operator operations: parsing, validation and the rules they enforce on a real store."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass import manage
from gatepass.crypto import VIRTUAL_KEY_PREFIX, Keyring
from gatepass.manage import ManageError, parse_expiry, parse_models
from gatepass.store import queries
from gatepass.store.db import create_engine, session_maker

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
KEYRING = Keyring("unit-test-secret-key-0123456789abcdef")


# parse_expiry


@pytest.mark.parametrize(
    ("value", "delta"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("1d", timedelta(days=1)),
        (" 7d ", timedelta(days=7)),
        ("3 h", timedelta(hours=3)),
    ],
)
def test_parse_expiry_accepts_durations(value: str, delta: timedelta) -> None:
    assert parse_expiry(value, now=NOW) == NOW + delta


def test_parse_expiry_durations_count_from_now_by_default() -> None:
    before = datetime.now(UTC)
    moment = parse_expiry("1h")
    after = datetime.now(UTC)
    assert moment is not None
    assert before + timedelta(hours=1) <= moment <= after + timedelta(hours=1)


def test_parse_expiry_accepts_an_iso_date_as_utc() -> None:
    assert parse_expiry("2031-01-02", now=NOW) == datetime(2031, 1, 2, tzinfo=UTC)


def test_parse_expiry_accepts_an_iso_datetime_without_zone_as_utc() -> None:
    assert parse_expiry("2031-01-02T03:04:05", now=NOW) == datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_parse_expiry_keeps_an_explicit_offset() -> None:
    moment = parse_expiry("2031-01-02T03:00:00+02:00", now=NOW)
    assert moment == datetime(2031, 1, 2, 1, 0, tzinfo=UTC)
    assert parse_expiry("2031-01-02T03:00:00Z", now=NOW) == datetime(2031, 1, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, ""])
def test_parse_expiry_nothing_means_never(value: str | None) -> None:
    assert parse_expiry(value, now=NOW) is None


@pytest.mark.parametrize("value", ["0d", "0h", "0m", "0w", "00d"])
def test_parse_expiry_refuses_zero(value: str) -> None:
    with pytest.raises(ManageError, match="must be in the future"):
        parse_expiry(value, now=NOW)


@pytest.mark.parametrize("value", ["-1d", "-30m"])
def test_parse_expiry_refuses_negative_durations(value: str) -> None:
    with pytest.raises(ManageError, match="invalid expiry"):
        parse_expiry(value, now=NOW)


@pytest.mark.parametrize(
    "value", ["2030-06-01T12:00:00+00:00", "2030-05-31", "2001-01-01T00:00:00Z"]
)
def test_parse_expiry_refuses_the_past_and_now(value: str) -> None:
    with pytest.raises(ManageError, match="must be in the future"):
        parse_expiry(value, now=NOW)


@pytest.mark.parametrize(
    "value", ["tomorrow", "30", "30s", "30D", "1y", "d", "30dd", "2031-13-01", "1.5d"]
)
def test_parse_expiry_refuses_garbage(value: str) -> None:
    with pytest.raises(ManageError, match="invalid expiry") as caught:
        parse_expiry(value, now=NOW)
    assert "30d" in str(caught.value)  # the message shows the accepted shapes


@pytest.mark.parametrize(
    "value", ["99999999d", "999999999999w", "9" * 30 + "m", "9999-12-31T23:59:59-01:00"]
)
def test_parse_expiry_refuses_absurd_durations_cleanly(value: str) -> None:
    with pytest.raises(ManageError, match=r"invalid expiry.*too far in the future"):
        parse_expiry(value, now=NOW)


# parse_models


def test_parse_models_star() -> None:
    assert parse_models("*") == ["*"]
    assert parse_models(" * ") == ["*"]


def test_parse_models_comma_list_keeps_order_and_trims() -> None:
    assert parse_models("b, a ,c") == ["b", "a", "c"]


def test_parse_models_accepts_a_sequence() -> None:
    assert parse_models(["a", " b ", "a"]) == ["a", "b"]


def test_parse_models_drops_duplicates_and_blanks() -> None:
    assert parse_models("a,b,a,,b, ,c") == ["a", "b", "c"]


@pytest.mark.parametrize("value", ["", " ", ",", " , ,", []])
def test_parse_models_refuses_empty(value: str | list[str]) -> None:
    with pytest.raises(ManageError, match="at least one model"):
        parse_models(value)


@pytest.mark.parametrize("value", ["*,a", "a,*", ["*", "a"], "*,*,a"])
def test_parse_models_refuses_star_mixed_with_models(value: str | list[str]) -> None:
    with pytest.raises(ManageError, match="'\\*' already allows every model"):
        parse_models(value)


def test_parse_models_duplicate_star_is_just_star() -> None:
    assert parse_models("*,*") == ["*"]


# against a migrated store


@pytest.fixture
async def session(tmp_path: Path, migrated_template: Path) -> AsyncIterator[AsyncSession]:
    db = tmp_path / "manage.db"
    shutil.copy(migrated_template, db)
    engine = create_engine(f"sqlite:///{db}")
    try:
        async with session_maker(engine)() as s:
            yield s
    finally:
        await engine.dispose()


async def add_provider(session: AsyncSession, name: str = "fake", **kwargs: object) -> None:
    values: dict[str, object] = {
        "kind": "anthropic",
        "base_url": "http://127.0.0.1:9/",
        "api_key": "sk-ant-unit-0123456789",
    }
    values.update(kwargs)
    await manage.add_provider(session, KEYRING, name=name, **values)  # type: ignore[arg-type]


async def test_add_provider_stores_an_encrypted_key_and_a_clean_url(session: AsyncSession) -> None:
    await add_provider(session, api_key="  sk-ant-unit-padded  ")
    provider = await queries.get_provider(session, name="fake")
    assert provider is not None
    assert provider.base_url == "http://127.0.0.1:9"
    assert "sk-ant-unit-padded" not in provider.api_key_encrypted
    assert KEYRING.decrypt(provider.api_key_encrypted) == "sk-ant-unit-padded"


async def test_add_provider_twice_updates_it(session: AsyncSession) -> None:
    await add_provider(session, api_key="sk-ant-first")
    await add_provider(session, api_key="sk-ant-second", base_url="https://api.example", timeout=5)
    providers = await queries.list_providers(session)
    assert len(providers) == 1
    assert providers[0].base_url == "https://api.example"
    assert providers[0].timeout == 5
    assert KEYRING.decrypt(providers[0].api_key_encrypted) == "sk-ant-second"


@pytest.mark.parametrize(
    "name", ["", "-leading-dash", "has space", "slash/name", "x" * 101, "ünïcode", "semi;colon"]
)
async def test_invalid_provider_names_are_refused(session: AsyncSession, name: str) -> None:
    with pytest.raises(ManageError, match="invalid provider name"):
        await add_provider(session, name=name)
    assert await queries.list_providers(session) == []


@pytest.mark.parametrize("name", ["a", "anthropic", "Prod_1", "team.eu-west@corp", "x" * 100])
async def test_valid_provider_names_are_accepted(session: AsyncSession, name: str) -> None:
    await add_provider(session, name=name)
    assert await queries.get_provider(session, name=name) is not None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("api.anthropic.com", "expected http"),
        ("ftp://api.anthropic.com", "expected http"),
        ("http://", "expected http"),
        ("https://api.anthropic.com/?x=1", "no query string"),
        ("https://api.anthropic.com/#frag", "no query string"),
    ],
)
async def test_invalid_base_urls_are_refused(session: AsyncSession, url: str, why: str) -> None:
    with pytest.raises(ManageError, match=f"invalid base URL.*{why}"):
        await add_provider(session, base_url=url)


async def test_unknown_provider_kind_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ManageError, match="unknown provider kind 'openai'"):
        await add_provider(session, kind="openai")


@pytest.mark.parametrize("api_key", ["", "   "])
async def test_empty_provider_api_key_is_refused(session: AsyncSession, api_key: str) -> None:
    with pytest.raises(ManageError, match="API key is empty"):
        await add_provider(session, api_key=api_key)


@pytest.mark.parametrize("timeout", [0, -1.0])
async def test_non_positive_timeout_is_refused(session: AsyncSession, timeout: float) -> None:
    with pytest.raises(ManageError, match="timeout must be positive"):
        await add_provider(session, timeout=timeout)


@pytest.mark.parametrize("model_id", ["", "has space", "-dash", "a" * 201, "tab\there", "é"])
async def test_invalid_model_ids_are_refused(session: AsyncSession, model_id: str) -> None:
    await add_provider(session)
    with pytest.raises(ManageError, match="invalid model id"):
        await manage.add_model(session, model_id=model_id, provider="fake")


async def test_invalid_alias_and_upstream_model_are_refused(session: AsyncSession) -> None:
    await add_provider(session)
    with pytest.raises(ManageError, match="invalid model id 'bad alias'"):
        await manage.add_model(session, model_id="m", provider="fake", aliases=["bad alias"])
    with pytest.raises(ManageError, match="invalid model id 'up stream'"):
        await manage.add_model(session, model_id="m", provider="fake", upstream_model="up stream")
    assert await queries.list_model_routes(session) == []


@pytest.mark.parametrize(
    "model_id", ["claude-sonnet-4-6", "anthropic/claude:latest", "org@model.v1_2", "a" * 200]
)
async def test_valid_model_ids_are_accepted(session: AsyncSession, model_id: str) -> None:
    await add_provider(session)
    route = await manage.add_model(session, model_id=model_id, provider="fake")
    assert route.model_id == model_id


async def test_model_with_unknown_provider_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ManageError, match="no provider named 'ghost'; add it first"):
        await manage.add_model(session, model_id="m", provider="ghost")


async def test_model_aliases_are_deduplicated(session: AsyncSession) -> None:
    await add_provider(session)
    route = await manage.add_model(session, model_id="m", provider="fake", aliases=["a", "b", "a"])
    assert route.aliases == ["a", "b"]


async def test_alias_taken_by_another_model_is_refused(session: AsyncSession) -> None:
    await add_provider(session)
    await manage.add_model(session, model_id="claude-sonnet-4-6", provider="fake", aliases=["s"])
    with pytest.raises(
        ManageError, match="'s' is already a model id or alias of 'claude-sonnet-4-6'"
    ):
        await manage.add_model(session, model_id="claude-haiku-4-5", provider="fake", aliases=["s"])
    assert [r.model_id for r, _ in await queries.list_model_routes(session)] == [
        "claude-sonnet-4-6"
    ]


async def test_alias_equal_to_another_model_id_is_refused(session: AsyncSession) -> None:
    await add_provider(session)
    await manage.add_model(session, model_id="claude-haiku-4-5", provider="fake")
    with pytest.raises(ManageError, match="'claude-haiku-4-5' is already a model id"):
        await manage.add_model(
            session, model_id="claude-sonnet-4-6", provider="fake", aliases=["claude-haiku-4-5"]
        )


async def test_model_id_equal_to_another_models_alias_is_refused(session: AsyncSession) -> None:
    await add_provider(session)
    await manage.add_model(session, model_id="claude-sonnet-4-6", provider="fake", aliases=["s"])
    with pytest.raises(
        ManageError, match="'s' is already a model id or alias of 'claude-sonnet-4-6'"
    ):
        await manage.add_model(session, model_id="s", provider="fake")


async def test_updating_a_model_may_keep_its_own_aliases(session: AsyncSession) -> None:
    await add_provider(session)
    await add_provider(session, name="other")
    await manage.add_model(session, model_id="m", provider="fake", aliases=["x"])
    route = await manage.add_model(
        session, model_id="m", provider="other", aliases=["x", "y"], display_name="M"
    )
    routes = await queries.list_model_routes(session)
    assert len(routes) == 1
    assert routes[0][1].name == "other"
    assert route.aliases == ["x", "y"]
    assert route.display_name == "M"


async def test_remove_model_and_unknown_model(session: AsyncSession) -> None:
    await add_provider(session)
    await manage.add_model(session, model_id="m", provider="fake")
    await manage.remove_model(session, model_id="m")
    assert await queries.list_model_routes(session) == []
    with pytest.raises(ManageError, match="no model 'm'"):
        await manage.remove_model(session, model_id="m")


async def test_remove_provider_is_refused_while_it_serves_models(session: AsyncSession) -> None:
    await add_provider(session)
    await manage.add_model(session, model_id="m1", provider="fake")
    await manage.add_model(session, model_id="m2", provider="fake")
    with pytest.raises(ManageError, match=r"still serves models \(m1, m2\); remove them first"):
        await manage.remove_provider(session, name="fake")
    assert await queries.get_provider(session, name="fake") is not None
    await manage.remove_model(session, model_id="m1")
    await manage.remove_model(session, model_id="m2")
    await manage.remove_provider(session, name="fake")
    assert await queries.get_provider(session, name="fake") is None


async def test_remove_provider_ignores_other_providers_models(session: AsyncSession) -> None:
    await add_provider(session)
    await add_provider(session, name="other")
    await manage.add_model(session, model_id="m", provider="other")
    await manage.remove_provider(session, name="fake")
    assert [p.name for p in await queries.list_providers(session)] == ["other"]


async def test_remove_unknown_provider_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ManageError, match="no provider named 'ghost'"):
        await manage.remove_provider(session, name="ghost")


# keys


async def with_models(session: AsyncSession) -> None:
    await add_provider(session)
    await manage.add_model(session, model_id="claude-haiku-4-5", provider="fake")
    await manage.add_model(
        session, model_id="claude-sonnet-4-6", provider="fake", aliases=["sonnet"]
    )


async def test_create_key_returns_the_secret_once_and_stores_only_a_keyed_hash(
    session: AsyncSession,
) -> None:
    await with_models(session)
    issued = await manage.create_key(
        session, KEYRING, name="ci", models="claude-haiku-4-5, sonnet", expires="30d"
    )
    assert issued.secret.startswith(VIRTUAL_KEY_PREFIX)
    assert len(issued.secret) >= 40
    stored = await queries.get_key_by_name(session, name="ci")
    assert stored is not None
    assert stored.allowed_models == ["claude-haiku-4-5", "sonnet"]
    assert stored.prefix == issued.secret[:10]
    assert stored.secret_hash == KEYRING.hash_credential(issued.secret)
    assert stored.secret_hash != hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in stored.model_dump_json()
    assert stored.expires_at is not None
    assert stored.expires_at > datetime.now(UTC) + timedelta(days=29)
    assert stored.revoked_at is None


async def test_create_key_secrets_are_unique(session: AsyncSession) -> None:
    await with_models(session)
    one = await manage.create_key(session, KEYRING, name="one", models="*")
    two = await manage.create_key(session, KEYRING, name="two", models="*")
    assert one.secret != two.secret


async def test_create_key_with_star_needs_no_models(session: AsyncSession) -> None:
    issued = await manage.create_key(session, KEYRING, name="all", models="*")
    assert issued.key.allowed_models == ["*"]
    assert issued.key.expires_at is None


async def test_create_key_refuses_unknown_models(session: AsyncSession) -> None:
    await with_models(session)
    with pytest.raises(ManageError, match="unknown model\\(s\\): claude-nope, gpt-4") as caught:
        await manage.create_key(
            session, KEYRING, name="ci", models="claude-haiku-4-5,claude-nope,gpt-4"
        )
    assert "gatepass models add" in str(caught.value)
    assert await queries.get_key_by_name(session, name="ci") is None


async def test_create_key_refuses_a_duplicate_name(session: AsyncSession) -> None:
    await with_models(session)
    first = await manage.create_key(session, KEYRING, name="ci", models="*")
    with pytest.raises(ManageError, match="a key named 'ci' already exists"):
        await manage.create_key(session, KEYRING, name="ci", models="claude-haiku-4-5")
    keys = await queries.list_keys(session)
    assert [k.secret_hash for k in keys] == [KEYRING.hash_credential(first.secret)]


@pytest.mark.parametrize("name", ["", "bad name", "-x", "x" * 101])
async def test_create_key_refuses_invalid_names(session: AsyncSession, name: str) -> None:
    with pytest.raises(ManageError, match="invalid key name"):
        await manage.create_key(session, KEYRING, name=name, models="*")


async def test_create_key_refuses_bad_expiry_and_stores_nothing(session: AsyncSession) -> None:
    with pytest.raises(ManageError, match="invalid expiry"):
        await manage.create_key(session, KEYRING, name="ci", models="*", expires="soon")
    with pytest.raises(ManageError, match="must be in the future"):
        await manage.create_key(session, KEYRING, name="ci", models="*", expires="2000-01-01")
    assert await queries.list_keys(session) == []


async def test_rotate_gives_a_new_secret_and_the_old_one_stops_matching(
    session: AsyncSession,
) -> None:
    await with_models(session)
    old = await manage.create_key(session, KEYRING, name="ci", models="claude-haiku-4-5")
    new = await manage.rotate_key(session, KEYRING, name="ci")
    assert new.secret != old.secret
    assert new.secret.startswith(VIRTUAL_KEY_PREFIX)
    assert new.key.id == old.key.id
    assert new.key.prefix == new.secret[:10]
    assert new.key.allowed_models == ["claude-haiku-4-5"]
    old_hash = KEYRING.hash_credential(old.secret)
    assert await queries.get_key_by_hash(session, secret_hash=old_hash) is None
    found = await queries.get_key_by_hash(session, secret_hash=KEYRING.hash_credential(new.secret))
    assert found is not None
    assert found.name == "ci"


async def test_rotate_of_a_revoked_or_unknown_key_is_refused(session: AsyncSession) -> None:
    await manage.create_key(session, KEYRING, name="ci", models="*")
    await manage.revoke_key(session, name="ci")
    with pytest.raises(ManageError, match="key 'ci' is revoked; create a new one instead"):
        await manage.rotate_key(session, KEYRING, name="ci")
    with pytest.raises(ManageError, match="no key named 'ghost'"):
        await manage.rotate_key(session, KEYRING, name="ghost")


async def test_revoke_is_idempotent(session: AsyncSession) -> None:
    await manage.create_key(session, KEYRING, name="ci", models="*")
    first = await manage.revoke_key(session, name="ci")
    assert first.revoked_at is not None
    revoked_at = first.revoked_at
    second = await manage.revoke_key(session, name="ci")
    assert second.revoked_at == revoked_at
    stored = await queries.get_key_by_name(session, name="ci")
    assert stored is not None
    assert stored.revoked_at == revoked_at


async def test_revoke_unknown_key_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ManageError, match="no key named 'ghost'"):
        await manage.revoke_key(session, name="ghost")


async def test_revoking_one_key_leaves_the_others_alone(session: AsyncSession) -> None:
    await manage.create_key(session, KEYRING, name="a", models="*")
    await manage.create_key(session, KEYRING, name="b", models="*")
    await manage.revoke_key(session, name="a")
    b = await queries.get_key_by_name(session, name="b")
    assert b is not None
    assert b.revoked_at is None
