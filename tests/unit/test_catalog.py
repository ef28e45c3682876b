"""Model resolution and allow-lists: exact names only, aliases checked by their target."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gatepass.policy.catalog import Catalog, Route, Upstream, normalise_model_name
from gatepass.policy.principal import Principal

UPSTREAM = Upstream("p", "anthropic", "http://127.0.0.1:1", "k", 10.0, ())


def route(model_id: str) -> Route:
    return Route(model_id, model_id, model_id, datetime.now(UTC), UPSTREAM)


CATALOG = Catalog(
    [route("claude-opus-4-7"), route("claude-haiku-4-5")],
    {"opus": "claude-opus-4-7", "ghost": "claude-nothing"},
)


def principal(*models: str) -> Principal:
    return Principal(1, "k", models, None, False)


@pytest.mark.parametrize(
    "name",
    [
        "claude-opus-4-7 ",
        "\tclaude-opus-4-7",
        "claude-opus-4-7\u200d",
        "claude-opus-4-7\x00",
        "claude\u00a0opus",
        "",
        "CLAUDE-OPUS-4-7",
    ],
)
def test_look_alike_names_do_not_resolve(name: str) -> None:
    assert CATALOG.resolve(name) is None


def test_exact_names_and_aliases_resolve() -> None:
    assert CATALOG.resolve("opus") is CATALOG.resolve("claude-opus-4-7")
    assert CATALOG.resolve("ghost") is None
    assert normalise_model_name("claude-opus-4-7") == "claude-opus-4-7"


def test_alias_is_allowed_only_through_its_target() -> None:
    opus = CATALOG.resolve("opus")
    assert opus is not None
    assert principal("claude-opus-4-7").may_use(opus, CATALOG)
    assert principal("opus").may_use(opus, CATALOG)
    assert not principal("claude-haiku-4-5").may_use(opus, CATALOG)


def test_star_allows_everything_and_empty_allows_nothing() -> None:
    haiku = CATALOG.resolve("claude-haiku-4-5")
    assert haiku is not None
    assert principal("*").may_use(haiku, CATALOG)
    assert not principal().may_use(haiku, CATALOG)
