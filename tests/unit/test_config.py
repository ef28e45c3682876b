"""Settings: TOML file, `GATEPASS_CONFIG`, environment overrides, `env:` references, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gatepass.config import (
    DEV_SECRET_KEY,
    ConfigError,
    Settings,
    load_settings,
)

SECRET = "a-long-enough-secret-for-tests-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not see the developer's own Gatepass variables."""
    for name in list(os.environ):
        if name.startswith("GATEPASS_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "gatepass.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_file_values_are_loaded(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
environment = "development"
database_url = "sqlite:///{tmp_path}/g.db"
secret_key = "{SECRET}"
public_url = "https://gw.example.com/"
redis_url = "redis://127.0.0.1:6379/0"
max_body_bytes = 1024
ping_interval = 3.5
key_cache_ttl = 0
""",
    )
    settings = load_settings(path, environ={})
    assert settings.environment == "development"
    assert settings.database_url == f"sqlite:///{tmp_path}/g.db"
    assert settings.secret_key.get_secret_value() == SECRET
    assert settings.public_url == "https://gw.example.com"  # trailing slash dropped
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.max_body_bytes == 1024
    assert settings.ping_interval == 3.5
    assert settings.key_cache_ttl == 0


def test_without_a_file_the_defaults_apply() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.environment == "production"
    assert settings.secret_key.get_secret_value() == ""
    assert settings.redis_url is None


def test_gatepass_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'public_url = "http://from-variable.example"\n')
    settings = load_settings(environ={"GATEPASS_CONFIG": str(path)})
    assert settings.public_url == "http://from-variable.example"


def test_gatepass_config_variable_is_read_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'public_url = "http://process-env.example"\n')
    monkeypatch.setenv("GATEPASS_CONFIG", str(path))
    assert load_settings().public_url == "http://process-env.example"


def test_explicit_path_wins_over_gatepass_config_variable(tmp_path: Path) -> None:
    explicit = write(tmp_path, 'public_url = "http://explicit.example"\n', "a.toml")
    other = write(tmp_path, 'public_url = "http://variable.example"\n', "b.toml")
    settings = load_settings(explicit, environ={"GATEPASS_CONFIG": str(other)})
    assert settings.public_url == "http://explicit.example"


def test_environment_overrides_beat_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
database_url = "sqlite:///file.db"
secret_key = "file-secret-0123456789abcdef"
public_url = "http://file.example"
redis_url = "redis://file:6379"
""",
    )
    environ = {
        "GATEPASS_DATABASE_URL": "postgresql://db.example/gatepass",
        "GATEPASS_SECRET_KEY": "env-secret-0123456789abcdef",
        "GATEPASS_PUBLIC_URL": "https://env.example/",
        "GATEPASS_REDIS_URL": "redis://env:6379",
    }
    settings = load_settings(path, environ=environ)
    assert settings.database_url == "postgresql://db.example/gatepass"
    assert settings.secret_key.get_secret_value() == "env-secret-0123456789abcdef"
    assert settings.public_url == "https://env.example"
    assert settings.redis_url == "redis://env:6379"


def test_empty_environment_override_does_not_erase_the_file_value(tmp_path: Path) -> None:
    path = write(tmp_path, 'public_url = "http://file.example"\n')
    settings = load_settings(path, environ={"GATEPASS_PUBLIC_URL": ""})
    assert settings.public_url == "http://file.example"


def test_environment_override_is_validated_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="public_url"):
        load_settings(environ={"GATEPASS_PUBLIC_URL": "gw.example.com"})


def test_env_references_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GP_TEST_SECRET", SECRET)
    monkeypatch.setenv("GP_TEST_UPSTREAM_KEY", "sk-ant-from-env")
    path = write(
        tmp_path,
        """
secret_key = "env:GP_TEST_SECRET"

[[providers]]
name = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "env:GP_TEST_UPSTREAM_KEY"
""",
    )
    settings = load_settings(path, environ={})
    assert settings.secret_key.get_secret_value() == SECRET
    assert settings.providers[0].api_key.get_secret_value() == "sk-ant-from-env"


def test_unset_env_reference_names_the_field_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GP_TEST_MISSING", raising=False)
    path = write(
        tmp_path,
        """
[[providers]]
name = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "env:GP_TEST_MISSING"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert "providers[0].api_key" in message
    assert "GP_TEST_MISSING" in message
    assert "not set" in message


def test_unset_top_level_env_reference_names_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GP_TEST_MISSING", raising=False)
    path = write(tmp_path, 'secret_key = "env:GP_TEST_MISSING"\n')
    with pytest.raises(ConfigError, match=r"^secret_key: environment variable GP_TEST_MISSING"):
        load_settings(path, environ={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="config file not found") as caught:
        load_settings(missing, environ={})
    assert str(missing) in str(caught.value)


def test_missing_file_named_by_gatepass_config_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(environ={"GATEPASS_CONFIG": str(missing)})


def test_directory_instead_of_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path, environ={})


def test_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'public_url = "http://caf\xe9.example"\n')
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(path, environ={})


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "database_url = \n[[[")
    with pytest.raises(ConfigError, match="is not valid TOML") as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)


def test_unknown_key_is_refused_and_named(tmp_path: Path) -> None:
    path = write(tmp_path, 'databse_url = "sqlite:///typo.db"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert message.startswith("invalid configuration:")
    assert "databse_url" in message


def test_unknown_key_in_a_section_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[cors]\nallow_origin = ["https://app.example"]\n')
    with pytest.raises(ConfigError, match=r"cors\.allow_origin"):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('max_body_bytes = "lots"', "max_body_bytes"),
        ("max_body_bytes = 0", "max_body_bytes"),
        ("ping_interval = -1", "ping_interval"),
        ('environment = "staging"', "environment"),
        ("public_url = 8080", "public_url"),
        ('cors = "everything"', "cors"),
        ("providers = 3", "providers"),
    ],
)
def test_wrong_type_or_value_is_refused_and_names_the_field(
    tmp_path: Path, line: str, field: str
) -> None:
    path = write(tmp_path, line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert message.startswith("invalid configuration:")
    assert f"\n  {field}" in message


@pytest.mark.parametrize("url", ["gw.example.com", "ftp://gw.example.com", "", "//gw.example"])
def test_public_url_must_be_http_or_https(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f'public_url = "{url}"\n')
    with pytest.raises(ConfigError, match=r"public_url.*must start with http:// or https://"):
        load_settings(path, environ={})


def test_explicit_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, 'public_url = "http://file.example"\n')
    settings = load_settings(
        path,
        environ={"GATEPASS_PUBLIC_URL": "http://env.example"},
        public_url="http://override.example",
        redis_url=None,
    )
    assert settings.public_url == "http://override.example"
    assert settings.redis_url is None


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.public_url = "http://elsewhere"  # type: ignore[misc]


# check_secret


def test_check_secret_refuses_an_empty_secret() -> None:
    with pytest.raises(ConfigError, match="secret_key is not set"):
        load_settings(environ={}).check_secret()


@pytest.mark.parametrize("secret", ["x", "short-secret", "0123456789abcde"])
def test_check_secret_refuses_a_short_secret(secret: str) -> None:
    settings = load_settings(environ={}, secret_key=secret, environment="development")
    with pytest.raises(ConfigError, match="too short"):
        settings.check_secret()


def test_check_secret_accepts_sixteen_characters() -> None:
    load_settings(environ={}, secret_key="0123456789abcdef").check_secret()


def test_check_secret_refuses_the_development_secret_in_production() -> None:
    settings = load_settings(environ={}, secret_key=DEV_SECRET_KEY)
    assert settings.environment == "production"
    with pytest.raises(ConfigError, match="development secret_key must not be used in production"):
        settings.check_secret()


def test_check_secret_allows_the_development_secret_in_development() -> None:
    settings = load_settings(environ={}, secret_key=DEV_SECRET_KEY, environment="development")
    settings.check_secret()


def test_check_secret_accepts_a_strong_secret_in_production() -> None:
    load_settings(environ={"GATEPASS_SECRET_KEY": SECRET}).check_secret()


def test_secret_is_not_shown_in_the_settings_repr() -> None:
    settings = load_settings(environ={"GATEPASS_SECRET_KEY": SECRET})
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


# sections


def test_cors_defaults() -> None:
    cors = load_settings(environ={}).cors
    assert cors.allow_origins == []
    assert cors.allow_headers == [
        "Content-Type",
        "Authorization",
        "X-Requested-With",
        "X-Stainless-Timeout",
        "X-Api-Key",
    ]
    assert cors.allow_credentials is False
    assert cors.max_age == 600


def test_cors_defaults_are_not_shared_between_instances() -> None:
    first = load_settings(environ={}).cors.allow_headers
    first.append("X-Mutated")
    assert "X-Mutated" not in load_settings(environ={}).cors.allow_headers


def test_cors_section_parses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[cors]
allow_origins = ["https://app.example"]
allow_headers = ["Content-Type"]
allow_credentials = true
max_age = 60
""",
    )
    cors = load_settings(path, environ={}).cors
    assert cors.allow_origins == ["https://app.example"]
    assert cors.allow_headers == ["Content-Type"]
    assert cors.allow_credentials is True
    assert cors.max_age == 60


def test_providers_and_models_sections_parse(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[providers]]
name = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "sk-ant-in-file"
timeout = 30
extra_headers = { "anthropic-beta" = "feature-1" }

[[providers]]
name = "backup"
kind = "anthropic"
base_url = "http://127.0.0.1:9999"
api_key = "sk-ant-backup"

[[models]]
id = "claude-sonnet-4-6"
provider = "anthropic"

[[models]]
id = "claude-sonnet-latest"
provider = "backup"
upstream_model = "claude-sonnet-4-6-20260101"
display_name = "Claude Sonnet (latest)"
aliases = ["sonnet", "s"]
""",
    )
    settings = load_settings(path, environ={})
    first, second = settings.providers
    assert first.name == "anthropic"
    assert first.kind == "anthropic"
    assert first.base_url == "https://api.anthropic.com"
    assert first.api_key.get_secret_value() == "sk-ant-in-file"
    assert "sk-ant-in-file" not in repr(first)
    assert first.timeout == 30.0
    assert first.extra_headers == {"anthropic-beta": "feature-1"}
    assert second.timeout == 600.0
    assert second.extra_headers == {}
    plain, latest = settings.models
    assert (plain.id, plain.provider, plain.upstream_model, plain.aliases) == (
        "claude-sonnet-4-6",
        "anthropic",
        None,
        [],
    )
    assert latest.upstream_model == "claude-sonnet-4-6-20260101"
    assert latest.display_name == "Claude Sonnet (latest)"
    assert latest.aliases == ["sonnet", "s"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[providers]]\nname = "x"\napi_key = "k"\n', "providers.0.base_url"),
        (
            '[[providers]]\nname = "x"\nkind = "openai"\nbase_url = "http://h"\napi_key = "k"\n',
            "providers.0.kind",
        ),
        ('[[models]]\nid = "m"\n', "models.0.provider"),
        ('[[models]]\nid = "m"\nprovider = "p"\nroute = "r"\n', "models.0.route"),
    ],
)
def test_invalid_provider_or_model_entries_are_refused(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_settings(path, environ={})
