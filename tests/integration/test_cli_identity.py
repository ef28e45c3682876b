"""`gatepass idps|clients|mappings|users` and `apply` for sign-in objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import failed, ok

pytestmark = pytest.mark.usefixtures("clean_environment")

ISSUER = "https://login.corp.example/oauth2/default"


def setup_keys(config: Path) -> None:
    ok(
        "providers",
        "add",
        "anthropic",
        "--base-url",
        "https://api.anthropic.com",
        "--api-key",
        "sk-ant-x",
        config=config,
    )
    ok("models", "add", "claude-haiku-4-5", "--provider", "anthropic", config=config)
    ok("keys", "create", "--name", "eng", "--models", "claude-haiku-4-5", config=config)


def test_idps_add_prints_the_redirect_uri_and_never_the_secret(config: Path) -> None:
    result = ok(
        "idps",
        "add",
        "okta",
        "--issuer",
        ISSUER,
        "--client-id",
        "0oa123",
        "--client-secret-env",
        "OKTA_SECRET",
        "--groups-claim",
        "groups",
        "--allowed-domain",
        "corp.example",
        "--audience",
        "api://gatepass",
        config=config,
        env={"OKTA_SECRET": "s3cret-okta-value"},
    )
    assert result.stdout.strip().endswith("/sso/callback/okta")
    listed = json.loads(ok("idps", "list", "--json", config=config).stdout)
    assert listed[0]["issuer"] == ISSUER
    assert listed[0]["has_client_secret"] is True
    assert listed[0]["allowed_domains"] == ["corp.example"]
    assert listed[0]["audiences"] == ["api://gatepass"]
    assert "s3cret-okta-value" not in json.dumps(listed)


def test_idps_add_refuses_bad_input_clearly(config: Path) -> None:
    assert "https" in failed(
        "idps", "add", "x", "--issuer", "http://idp.corp.example", "--client-id", "c", config=config
    )
    assert "openid" in failed(
        "idps",
        "add",
        "x",
        "--issuer",
        ISSUER,
        "--client-id",
        "c",
        "--scopes",
        "email",
        config=config,
    )
    assert "domain" in failed(
        "idps",
        "add",
        "x",
        "--issuer",
        ISSUER,
        "--client-id",
        "c",
        "--allowed-domain",
        "not a domain",
        config=config,
    )
    assert "not set" in failed(
        "idps",
        "add",
        "x",
        "--issuer",
        ISSUER,
        "--client-id",
        "c",
        "--client-secret-env",
        "NOPE_UNSET",
        config=config,
    )


def test_clients_add_registers_a_public_desktop_client(config: Path) -> None:
    ok(
        "clients",
        "add",
        "claude-desktop",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        config=config,
    )
    listed = json.loads(ok("clients", "list", "--json", config=config).stdout)
    assert listed == [
        {
            "client_id": "claude-desktop",
            "public": True,
            "redirect_uris": ["http://127.0.0.1/callback"],
        }
    ]


def test_confidential_clients_get_a_secret_once(config: Path) -> None:
    result = ok(
        "clients",
        "add",
        "tool",
        "--confidential",
        "--redirect-uri",
        "https://tool.corp.example/cb",
        config=config,
    )
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("gpcs-")
    assert secret not in ok("clients", "list", "--json", config=config).stdout


def test_clients_refuse_unsafe_redirect_uris(config: Path) -> None:
    assert "loopback" in failed(
        "clients", "add", "c", "--redirect-uri", "http://evil.example/cb", config=config
    )
    assert "fragment" in failed(
        "clients", "add", "c", "--redirect-uri", "https://ok.example/cb#x", config=config
    )


def test_mappings_add_list_remove(config: Path) -> None:
    setup_keys(config)
    ok("idps", "add", "okta", "--issuer", ISSUER, "--client-id", "c", config=config)
    ok(
        "mappings",
        "add",
        "--idp",
        "okta",
        "--group",
        "engineering",
        "--key",
        "eng",
        "--priority",
        "10",
        config=config,
    )
    ok(
        "mappings",
        "add",
        "--idp",
        "okta",
        "--email",
        "Boss@Corp.Example",
        "--key",
        "eng",
        "--role",
        "admin",
        config=config,
    )
    listed = json.loads(ok("mappings", "list", "--json", config=config).stdout)
    assert [(m["group"], m["email"], m["key"], m["priority"], m["role"]) for m in listed] == [
        ("engineering", None, "eng", 10, "user"),
        (None, "boss@corp.example", "eng", 100, "admin"),
    ]
    ok("mappings", "remove", str(listed[0]["id"]), config=config)
    assert len(json.loads(ok("mappings", "list", "--json", config=config).stdout)) == 1


def test_mappings_refuse_bad_input_clearly(config: Path) -> None:
    setup_keys(config)
    ok("idps", "add", "okta", "--issuer", ISSUER, "--client-id", "c", config=config)
    assert "exactly one" in failed(
        "mappings", "add", "--idp", "okta", "--key", "eng", config=config
    )
    assert "exactly one" in failed(
        "mappings",
        "add",
        "--idp",
        "okta",
        "--key",
        "eng",
        "--group",
        "g",
        "--email",
        "a@b.c",
        config=config,
    )
    assert "no IdP" in failed(
        "mappings", "add", "--idp", "ghost", "--key", "eng", "--group", "g", config=config
    )
    assert "no key" in failed(
        "mappings", "add", "--idp", "okta", "--key", "ghost", "--group", "g", config=config
    )
    assert "role" in failed(
        "mappings",
        "add",
        "--idp",
        "okta",
        "--key",
        "eng",
        "--group",
        "g",
        "--role",
        "root",
        config=config,
    )
    assert "no mapping" in failed("mappings", "remove", "999", config=config)


def test_users_disable_unknown_email_fails_clearly(config: Path) -> None:
    assert "no user" in failed("users", "disable", "nobody@corp.example", config=config)
    assert "no users" in ok("users", "list", config=config).stdout


def test_apply_declares_sign_in_objects_idempotently(config: Path, tmp_path: Path) -> None:
    declared = tmp_path / "policy.toml"
    declared.write_text(
        f"""
[[providers]]
name = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "env:APPLY_PROVIDER_KEY"

[[models]]
id = "claude-haiku-4-5"
provider = "anthropic"

[[keys]]
name = "eng"
models = ["claude-haiku-4-5"]

[[idps]]
name = "okta"
issuer = "{ISSUER}"
client_id = "0oa1"
client_secret = "env:APPLY_IDP_SECRET"
allowed_domains = ["corp.example"]

[[clients]]
client_id = "claude-desktop"
redirect_uris = ["http://127.0.0.1/callback"]

[[mappings]]
idp = "okta"
group = "engineering"
key = "eng"
priority = 10
""",
        encoding="utf-8",
    )
    env = {"APPLY_PROVIDER_KEY": "sk-ant-provider", "APPLY_IDP_SECRET": "idp-secret"}
    import os

    os.environ.update(env)
    try:
        first = ok("apply", str(declared), config=config)
        assert first.stdout.splitlines()[-1].startswith("gp-")
        second = ok("apply", str(declared), config=config)
        assert "gp-" not in second.stdout
    finally:
        for name in env:
            os.environ.pop(name)
    mappings = json.loads(ok("mappings", "list", "--json", config=config).stdout)
    assert len(mappings) == 1
    assert json.loads(ok("idps", "list", "--json", config=config).stdout)[0]["has_client_secret"]


def test_apply_refuses_a_mapping_with_both_group_and_email(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[mappings]]\nidp = "x"\nkey = "k"\ngroup = "g"\nemail = "a@b.c"\n', encoding="utf-8"
    )
    assert "exactly one of group or email" in failed("apply", str(bad), config=config)


def test_signing_keys_rotate_prints_a_new_key_id_each_time(config: Path) -> None:
    first = json.loads(ok("signing-keys", "rotate", "--json", config=config).stdout)
    second = json.loads(ok("signing-keys", "rotate", "--json", config=config).stdout)
    assert first["kid"] != second["kid"]
    assert first["grace_seconds"] == 86400
