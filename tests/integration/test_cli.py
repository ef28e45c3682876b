"""The `gatepass` command line, driven as an operator would: in-process and as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner, Result

from gatepass.cli import app
from tests.conftest import UPSTREAM_KEY, GatepassFactory, Harness, Upstream
from tests.integration.conftest import write_config

MESSAGE = {
    "model": "claude-haiku-4-5",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "Hi"}],
}


@pytest.fixture(autouse=True)
def _only_given_configuration(clean_environment: None) -> None:
    """The CLI must only see the configuration each test gives it."""


def cli(*args: str, config: Path | None = None, env: dict[str, str] | None = None) -> Result:
    argv = [*args] if config is None else [*args, "--config", str(config)]
    return CliRunner().invoke(app, argv, env=env, catch_exceptions=False)


def ok(*args: str, config: Path | None = None, env: dict[str, str] | None = None) -> Result:
    result = cli(*args, config=config, env=env)
    assert result.exit_code == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def failed(*args: str, config: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command that must fail cleanly; return its one-line error."""
    result = cli(*args, config=config, env=env)
    assert result.exit_code == 1, f"{args}: exit {result.exit_code}\n{result.stdout}"
    assert result.stdout == ""
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def last_line(result: Result) -> str:
    return result.stdout.rstrip("\n").splitlines()[-1]


def add_fake_provider(config: Path, base_url: str = "http://127.0.0.1:9") -> None:
    ok(
        "providers",
        "add",
        "fake",
        "--base-url",
        base_url,
        "--api-key",
        UPSTREAM_KEY,
        config=config,
    )


def post_message(harness_base: str, key: str) -> httpx2.Response:
    return httpx2.post(
        harness_base + "/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json=MESSAGE,
    )


# keys


def test_keys_create_prints_the_secret_once_on_the_last_line(config: Path) -> None:
    add_fake_provider(config)
    ok("models", "add", "claude-haiku-4-5", "--provider", "fake", config=config)
    result = ok("keys", "create", "--name", "ci", "--models", "claude-haiku-4-5", config=config)
    secret = last_line(result)
    assert secret.startswith("gp-")
    assert len(secret) >= 40
    assert result.stdout.count(secret) == 1
    assert "ci" in result.stdout.splitlines()[0]
    assert result.stderr == ""


def test_keys_create_json_includes_the_secret(config: Path) -> None:
    result = ok("keys", "create", "--name", "ci", "--models", "*", "--json", config=config)
    data = json.loads(result.stdout)
    assert data["secret"].startswith("gp-")
    assert data["name"] == "ci"
    assert data["models"] == ["*"]
    assert data["status"] == "active"
    assert data["prefix"] == data["secret"][:10]
    assert data["expires_at"] is None


def test_keys_create_accepts_expires(config: Path) -> None:
    result = ok(
        "keys", "create", "--name", "ci", "--models", "*", "--expires", "30d", "--json",
        config=config,
    )  # fmt: skip
    expires = datetime.fromisoformat(json.loads(result.stdout)["expires_at"])
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs(expires - expected) < timedelta(minutes=5)
    result = ok(
        "keys", "create", "--name", "iso", "--models", "*", "--expires", "2099-01-01", "--json",
        config=config,
    )  # fmt: skip
    assert json.loads(result.stdout)["expires_at"].startswith("2099-01-01T00:00:00")


@pytest.mark.parametrize("expires", ["tomorrow", "0d", "2001-01-01", "99999999d"])
def test_keys_create_refuses_bad_expires(config: Path, expires: str) -> None:
    error = failed(
        "keys", "create", "--name", "ci", "--models", "*", "--expires", expires, config=config
    )
    assert "expir" in error
    assert "no keys" in ok("keys", "list", config=config).stdout


def test_keys_create_refuses_unknown_models_and_duplicate_names(config: Path) -> None:
    error = failed("keys", "create", "--name", "ci", "--models", "claude-nope", config=config)
    assert "unknown model(s): claude-nope" in error
    ok("keys", "create", "--name", "ci", "--models", "*", config=config)
    error = failed("keys", "create", "--name", "ci", "--models", "*", config=config)
    assert "a key named 'ci' already exists" in error


def test_keys_list_never_shows_secrets(config: Path) -> None:
    secrets = [
        last_line(ok("keys", "create", "--name", name, "--models", "*", config=config))
        for name in ("alpha", "beta")
    ]
    text = ok("keys", "list", config=config).stdout
    as_json = ok("keys", "list", "--json", config=config).stdout
    for secret in secrets:
        assert secret not in text
        assert secret not in as_json
        assert secret[:10] in text  # the visible prefix, so people can tell keys apart
    rows = json.loads(as_json)
    assert [row["name"] for row in rows] == ["alpha", "beta"]
    assert all("secret" not in row for row in rows)
    assert [row["prefix"] for row in rows] == [s[:10] for s in secrets]
    assert all(row["status"] == "active" for row in rows)


def test_keys_list_on_an_empty_store(config: Path) -> None:
    assert ok("keys", "list", config=config).stdout.strip() == "no keys"
    assert json.loads(ok("keys", "list", "--json", config=config).stdout) == []


def running_gateway_config(harness: Harness, tmp_path: Path) -> Path:
    return write_config(tmp_path / "shared.toml", harness.settings.database_url)


def test_keys_revoke_makes_a_running_gateway_refuse_the_key(
    make_gatepass: GatepassFactory, tmp_path: Path
) -> None:
    harness = make_gatepass(key_cache_ttl=0)
    config = running_gateway_config(harness, tmp_path)
    secret = last_line(
        ok("keys", "create", "--name", "ci", "--models", "claude-haiku-4-5", config=config)
    )
    assert post_message(harness.base, secret).status_code == 200
    result = ok("keys", "revoke", "ci", config=config)
    assert result.stdout.strip() == "key ci revoked"
    refused = post_message(harness.base, secret)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "This API key has been revoked"
    assert len(harness.fake.requests) == 1
    # revoking again is harmless, and the listing says what happened
    again = json.loads(ok("keys", "revoke", "ci", "--json", config=config).stdout)
    assert again["status"] == "revoked"
    assert json.loads(ok("keys", "list", "--json", config=config).stdout)[0]["status"] == "revoked"
    # and a revoked key cannot be rotated back to life
    assert "is revoked" in failed("keys", "rotate", "ci", config=config)


def test_keys_rotate_prints_a_new_secret_and_the_old_one_is_refused(
    make_gatepass: GatepassFactory, tmp_path: Path
) -> None:
    harness = make_gatepass(key_cache_ttl=0)
    config = running_gateway_config(harness, tmp_path)
    old = last_line(ok("keys", "create", "--name", "ci", "--models", "*", config=config))
    assert post_message(harness.base, old).status_code == 200
    result = ok("keys", "rotate", "ci", config=config)
    new = last_line(result)
    assert new.startswith("gp-")
    assert new != old
    assert old not in result.stdout
    assert post_message(harness.base, old).status_code == 401
    assert post_message(harness.base, new).status_code == 200
    rotated = json.loads(ok("keys", "rotate", "ci", "--json", config=config).stdout)
    assert rotated["secret"] not in (old, new)
    assert post_message(harness.base, new).status_code == 401
    assert post_message(harness.base, rotated["secret"]).status_code == 200


def test_keys_commands_on_unknown_keys_fail_clearly(config: Path) -> None:
    assert "no key named 'ghost'" in failed("keys", "revoke", "ghost", config=config)
    assert "no key named 'ghost'" in failed("keys", "rotate", "ghost", config=config)


# providers


def test_providers_add_needs_exactly_one_way_to_give_the_key(config: Path) -> None:
    base = ("providers", "add", "fake", "--base-url", "http://127.0.0.1:9")
    neither = failed(*base, config=config)
    assert "exactly one of --api-key-env VAR or --api-key KEY" in neither
    both = failed(*base, "--api-key-env", "GP_KEY", "--api-key", "k", config=config)
    assert "exactly one of" in both
    assert "no providers" in ok("providers", "list", config=config).stdout


def test_providers_add_fails_clearly_when_the_variable_is_unset(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GP_TEST_UNSET_KEY", raising=False)
    error = failed(
        "providers", "add", "fake", "--base-url", "http://127.0.0.1:9",
        "--api-key-env", "GP_TEST_UNSET_KEY", config=config,
    )  # fmt: skip
    assert error.strip() == "error: environment variable GP_TEST_UNSET_KEY is not set"
    error = failed(
        "providers", "add", "fake", "--base-url", "http://127.0.0.1:9",
        "--api-key-env", "GP_TEST_UNSET_KEY", config=config, env={"GP_TEST_UNSET_KEY": ""},
    )  # fmt: skip
    assert "GP_TEST_UNSET_KEY is not set" in error


def test_providers_list_never_shows_the_key(config: Path) -> None:
    ok(
        "providers", "add", "fake", "--base-url", "http://127.0.0.1:9/", "--kind", "anthropic",
        "--api-key-env", "GP_TEST_KEY", "--timeout", "12.5", config=config,
        env={"GP_TEST_KEY": UPSTREAM_KEY},
    )  # fmt: skip
    add = ok(
        "providers", "add", "other", "--base-url", "https://api.example", "--api-key",
        "sk-ant-other-secret", config=config,
    )  # fmt: skip
    assert "sk-ant-other-secret" not in add.stdout
    text = ok("providers", "list", config=config).stdout
    as_json = ok("providers", "list", "--json", config=config).stdout
    for secret in (UPSTREAM_KEY, "sk-ant-other-secret"):
        assert secret not in text
        assert secret not in as_json
    assert text.splitlines() == [
        "fake\tanthropic\thttp://127.0.0.1:9",
        "other\tanthropic\thttps://api.example",
    ]
    rows = json.loads(as_json)
    assert rows[0] == {
        "name": "fake",
        "kind": "anthropic",
        "base_url": "http://127.0.0.1:9",
        "timeout": 12.5,
    }


def test_providers_add_refuses_bad_input(config: Path) -> None:
    bad_url = failed(
        "providers", "add", "fake", "--base-url", "api.example", "--api-key", "k", config=config
    )  # fmt: skip
    assert "invalid base URL" in bad_url
    bad_kind = failed(
        "providers", "add", "fake", "--base-url", "http://h", "--kind", "openai", "--api-key",
        "k", config=config,
    )  # fmt: skip
    assert "unknown provider kind 'openai'" in bad_kind


def test_providers_remove_is_refused_while_serving_models(config: Path) -> None:
    add_fake_provider(config)
    ok("models", "add", "claude-haiku-4-5", "--provider", "fake", config=config)
    assert "still serves models (claude-haiku-4-5)" in failed(
        "providers", "remove", "fake", config=config
    )
    ok("models", "remove", "claude-haiku-4-5", config=config)
    assert (
        ok("providers", "remove", "fake", config=config).stdout.strip() == "provider fake removed"
    )
    assert "no providers" in ok("providers", "list", config=config).stdout


# models


def test_models_add_with_an_unknown_provider_fails(config: Path) -> None:
    result = cli("models", "add", "claude-haiku-4-5", "--provider", "ghost", config=config)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "error: no provider named 'ghost'; add it first"


def test_models_add_and_list(config: Path) -> None:
    add_fake_provider(config)
    ok("models", "add", "claude-haiku-4-5", "--provider", "fake", config=config)
    ok(
        "models", "add", "claude-sonnet-latest", "--provider", "fake",
        "--upstream-model", "claude-sonnet-4-6-20260101", "--display-name", "Sonnet (latest)",
        "--alias", "sonnet", "--alias", "s", config=config,
    )  # fmt: skip
    rows = json.loads(ok("models", "list", "--json", config=config).stdout)
    assert rows == [
        {
            "id": "claude-haiku-4-5",
            "provider": "fake",
            "upstream_model": "claude-haiku-4-5",
            "display_name": "claude-haiku-4-5",
            "aliases": [],
        },
        {
            "id": "claude-sonnet-latest",
            "provider": "fake",
            "upstream_model": "claude-sonnet-4-6-20260101",
            "display_name": "Sonnet (latest)",
            "aliases": ["sonnet", "s"],
        },
    ]
    text = ok("models", "list", config=config).stdout
    assert "claude-sonnet-latest\tfake\tclaude-sonnet-4-6-20260101" in text
    collision = failed(
        "models", "add", "claude-opus-4-7", "--provider", "fake", "--alias", "s", config=config
    )
    assert "'s' is already a model id or alias of 'claude-sonnet-latest'" in collision
    assert "no model 'ghost'" in failed("models", "remove", "ghost", config=config)


def test_models_added_by_the_cli_are_served_after_a_catalogue_refresh(
    make_gatepass: GatepassFactory, tmp_path: Path
) -> None:
    harness = make_gatepass()
    config = running_gateway_config(harness, tmp_path)
    ok(
        "models", "add", "claude-new", "--provider", "fake",
        "--upstream-model", "claude-haiku-4-5", config=config,
    )  # fmt: skip
    secret = last_line(
        ok("keys", "create", "--name", "ci", "--models", "claude-new", config=config)
    )
    harness.refresh_catalog()
    response = httpx2.post(
        harness.base + "/v1/messages",
        headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
        json={**MESSAGE, "model": "claude-new"},
    )
    assert response.status_code == 200, response.text
    assert json.loads(harness.fake.requests[-1].body)["model"] == "claude-haiku-4-5"


# configuration and database problems


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    for command in (["keys", "list"], ["migrate"], ["providers", "list"]):
        error = failed(*command, config=missing)
        assert error.strip() == f"error: config file not found: {missing}"


def test_gatepass_config_variable_is_used(config: Path) -> None:
    ok("keys", "create", "--name", "ci", "--models", "*", env={"GATEPASS_CONFIG": str(config)})
    assert "ci\t" in ok("keys", "list", config=config).stdout
    missing = str(config) + ".missing"
    assert "config file not found" in failed("keys", "list", env={"GATEPASS_CONFIG": missing})


def test_invalid_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('database_url = "sqlite:///x.db"\nsecret = "typo"\n', encoding="utf-8")
    error = failed("keys", "list", config=path)
    assert "invalid configuration" in error
    assert "secret" in error


def test_commands_that_need_the_secret_refuse_without_one(tmp_path: Path) -> None:
    config = write_config(tmp_path / "nosecret.toml", f"sqlite:///{tmp_path}/x.db", None)
    error = failed("keys", "create", "--name", "ci", "--models", "*", config=config)
    assert "secret_key is not set" in error
    short = write_config(tmp_path / "short.toml", f"sqlite:///{tmp_path}/x.db", "short")
    assert "too short" in failed("keys", "create", "--name", "ci", "--models", "*", config=short)


def test_commands_against_an_unmigrated_database_give_a_hint(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    config = write_config(tmp_path / "gatepass.toml", f"sqlite:///{db}")
    for command in (
        ["keys", "list"],
        ["keys", "create", "--name", "ci", "--models", "*"],
        ["providers", "list"],
        ["models", "list"],
        ["providers", "add", "fake", "--base-url", "http://127.0.0.1:9", "--api-key", "k"],
    ):
        error = failed(*command, config=config)
        assert "database error" in error
        assert "Did you run `gatepass migrate`?" in error
    assert ok("migrate", config=config).stdout.strip() == "database is up to date"
    assert ok("keys", "list", config=config).stdout.strip() == "no keys"
    # migrating an up-to-date database is a no-op
    assert ok("migrate", config=config).stdout.strip() == "database is up to date"


def test_migrate_failure_is_reported(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gatepass.toml", f"sqlite:///{tmp_path}/no/such/dir/gatepass.db"
    )
    assert "migration failed" in failed("migrate", config=config)


# apply


def test_apply_imports_providers_and_models(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GP_TEST_APPLY_KEY", "sk-ant-applied-secret")
    declared = tmp_path / "declared.toml"
    declared.write_text(
        """
[[providers]]
name = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "env:GP_TEST_APPLY_KEY"
timeout = 60

[[models]]
id = "claude-sonnet-4-6"
provider = "anthropic"

[[models]]
id = "claude-sonnet-latest"
provider = "anthropic"
upstream_model = "claude-sonnet-4-6"
aliases = ["sonnet"]
""",
        encoding="utf-8",
    )
    result = ok("apply", str(declared), config=config)
    assert result.stdout.strip() == "applied 1 providers, 2 models"
    assert "sk-ant-applied-secret" not in result.stdout
    providers = json.loads(ok("providers", "list", "--json", config=config).stdout)
    assert [(p["name"], p["base_url"], p["timeout"]) for p in providers] == [
        ("anthropic", "https://api.anthropic.com", 60.0)
    ]
    models = json.loads(ok("models", "list", "--json", config=config).stdout)
    assert [(m["id"], m["upstream_model"], m["aliases"]) for m in models] == [
        ("claude-sonnet-4-6", "claude-sonnet-4-6", []),
        ("claude-sonnet-latest", "claude-sonnet-4-6", ["sonnet"]),
    ]
    # applying again is idempotent
    ok("apply", str(declared), config=config)
    assert len(json.loads(ok("models", "list", "--json", config=config).stdout)) == 2
    # and keys can use what was applied, aliases included
    ok("keys", "create", "--name", "ci", "--models", "sonnet,claude-sonnet-4-6", config=config)


def test_apply_refuses_bad_files_clearly(config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert "apply file not found" in failed("apply", str(missing), config=config)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[[models]]\nid = "m"\nprovider = "ghost"\n', encoding="utf-8")
    assert "no provider named 'ghost'" in failed("apply", str(unknown), config=config)
    assert "no models" in ok("models", "list", config=config).stdout
    invalid = tmp_path / "invalid.toml"
    invalid.write_text('[[models]]\nid = "m"\n', encoding="utf-8")
    error = failed("apply", str(invalid), config=config)
    assert str(invalid) in error
    assert "models.0.provider" in error


# as real processes


def gatepass_command() -> list[str]:
    script = Path(sys.executable).with_name("gatepass")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gatepass.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def process_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEPASS_")}
    env["GP_TEST_UPSTREAM_KEY"] = UPSTREAM_KEY
    return env


def run(args: list[str], config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*gatepass_command(), *args, "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[subprocess.Popen[Any]]]:
    """Processes started by a test; any still running at the end are killed."""
    processes: list[subprocess.Popen[Any]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_until_ready(process: subprocess.Popen[Any], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        try:
            process.wait(timeout=0.05)  # doubles as the pause between polls
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"gatepass serve exited with {process.returncode}:\n{log.read_text()}")
    pytest.fail(f"gatepass serve was not ready within 30 s:\n{log.read_text()}")


def test_serve_refuses_several_workers_when_limits_are_counted_in_memory(config: Path) -> None:
    message = failed("serve", "--workers", "2", config=config)
    assert "--workers 2 needs budgets and rate limits in Redis" in message
    memory = config.parent / "memory.toml"
    memory.write_text(config.read_text() + '\nredis_url = "redis://127.0.0.1:9/0"\n')
    memory.write_text(memory.read_text() + '[limits]\nbackend = "memory"\n')
    assert "needs budgets and rate limits in Redis" in failed(
        "serve", "--workers", "2", config=memory
    )


def test_operator_sets_up_and_serves_with_real_processes(
    tmp_path: Path,
    upstream: Upstream,
    process_env: dict[str, str],
    served: list[subprocess.Popen[Any]],
) -> None:
    config = write_config(tmp_path / "gatepass.toml", f"sqlite:///{tmp_path}/gatepass.db")
    assert "database is up to date" in run(["migrate"], config, process_env).stdout
    run(
        ["providers", "add", "fake", "--kind", "anthropic", "--base-url", upstream.url,
         "--api-key-env", "GP_TEST_UPSTREAM_KEY"],
        config,
        process_env,
    )  # fmt: skip
    run(["models", "add", "claude-haiku-4-5", "--provider", "fake"], config, process_env)
    created = run(
        ["keys", "create", "--name", "ci", "--models", "claude-haiku-4-5"], config, process_env
    )
    secret = created.stdout.rstrip("\n").splitlines()[-1]
    assert secret.startswith("gp-")

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*gatepass_command(), "serve", "--port", str(port), "--config", str(config)],
            env=process_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, url, log)

    response = post_message(url + "/anthropic", secret)
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "assistant"
    received = upstream.fake.requests[-1]
    assert received.header("x-api-key") == UPSTREAM_KEY
    assert post_message(url + "/anthropic", secret[:-1] + "x").status_code == 401
    listed = httpx2.get(url + "/anthropic/v1/models", headers={"x-api-key": secret})
    assert [m["id"] for m in listed.json()["data"]] == ["claude-haiku-4-5"]

    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as is conventional:
    # either way the lifespan shutdown must have completed.
    returncode = process.wait(timeout=30)
    output = log.read_text()
    assert returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output
    assert "Finished server process" in output
    assert "Traceback" not in output
    assert secret not in output
    assert UPSTREAM_KEY not in output
    with pytest.raises(httpx2.TransportError):
        httpx2.get(url + "/healthz", timeout=2)
