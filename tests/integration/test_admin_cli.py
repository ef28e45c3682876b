"""`gatepass admin-tokens` and `gatepass audit`, and the audit events CLI changes leave."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import pytest

from tests.integration.test_cli import failed, last_line, ok

pytestmark = pytest.mark.usefixtures("clean_environment")


def seed(config: Path) -> None:
    ok(
        "providers", "add", "anthropic", "--base-url", "https://api.anthropic.com",
        "--api-key", "sk-ant-cli-secret-value", config=config,
    )  # fmt: skip
    ok("models", "add", "claude-haiku-4-5", "--provider", "anthropic", config=config)


def test_admin_tokens_are_printed_once_listed_by_prefix_and_revoked(config: Path) -> None:
    created = ok("admin-tokens", "create", "--name", "siem", "--read-only", config=config)
    token = last_line(created)
    assert token.startswith("gpa-")
    listed = json.loads(ok("admin-tokens", "list", "--json", config=config).stdout)
    assert listed == [{**listed[0], "name": "siem", "read_only": True, "revoked_at": None}]
    assert token not in json.dumps(listed)
    assert token.startswith(listed[0]["prefix"])
    ok("admin-tokens", "revoke", "siem", config=config)
    assert "revoked" in ok("admin-tokens", "list", config=config).stdout
    assert "no admin token" in failed("admin-tokens", "revoke", "other", config=config)
    assert "already exists" in failed("admin-tokens", "create", "--name", "siem", config=config)


def test_every_cli_change_is_an_audit_event_by_cli_without_secrets(config: Path) -> None:
    seed(config)
    key = last_line(ok("keys", "create", "--name", "eng", "--models", "*", config=config))
    ok("keys", "update", "eng", "--rpm", "10", config=config)
    ok("keys", "revoke", "eng", config=config)
    ok("models", "remove", "claude-haiku-4-5", config=config)
    events = json.loads(ok("audit", "list", "--json", "--limit", "100", config=config).stdout)
    actions = [e["action"] for e in reversed(events)]
    assert actions == [
        "provider.create", "model.create", "key.create", "key.update", "key.revoke",
        "model.delete",
    ]  # fmt: skip
    assert {e["actor"] for e in events} == {"cli"}
    update = next(e for e in events if e["action"] == "key.update")
    assert update["detail"]["before"].get("rpm") is None
    assert update["detail"]["after"]["rpm"] == 10
    dumped = json.dumps(events)
    assert key not in dumped
    assert "sk-ant-cli-secret-value" not in dumped
    assert "secret_hash" not in dumped
    assert "encrypted" not in dumped


def test_apply_changes_are_audited_too(config: Path, tmp_path: Path) -> None:
    declared = tmp_path / "gatepass-apply.toml"
    declared.write_text(
        '[[providers]]\nname = "a"\nbase_url = "https://api.anthropic.com"\napi_key = "sk-apply"\n'
        '[[models]]\nid = "claude-opus-4-7"\nprovider = "a"\n',
        encoding="utf-8",
    )
    ok("apply", str(declared), config=config)
    events = json.loads(ok("audit", "list", "--json", config=config).stdout)
    assert {e["action"] for e in events} == {"provider.create", "model.create"}


def test_audit_list_filters_and_export_writes_json_lines(config: Path) -> None:
    seed(config)
    ok("keys", "create", "--name", "a", "--models", "*", config=config)
    ok("keys", "create", "--name", "b", "--models", "*", config=config)
    only_b = json.loads(ok("audit", "list", "--target", "b", "--json", config=config).stdout)
    assert [e["action"] for e in only_b] == ["key.create"]
    keys = json.loads(ok("audit", "list", "--action", "key.", "--json", config=config).stdout)
    assert [e["target"] for e in keys] == ["b", "a"]  # newest first
    assert "no audit events" in ok("audit", "list", "--since", "2999-01-01", config=config).stdout
    exported = ok("audit", "export", "--since", "1h", config=config).stdout.splitlines()
    assert [json.loads(line)["action"] for line in exported] == [
        "provider.create", "model.create", "key.create", "key.create",
    ]  # fmt: skip
    assert ok("audit", "export", "--until", "2000-01-01", config=config).stdout == ""
    assert "invalid time" in failed("audit", "export", "--since", "soonish", config=config)


def test_signing_key_rotation_is_audited(config: Path) -> None:
    ok("signing-keys", "rotate", config=config)
    events = json.loads(
        ok("audit", "list", "--action", "signing_key.", "--json", config=config).stdout
    )
    assert [(e["action"], e["actor"]) for e in events] == [("signing_key.rotate", "cli")]


def test_the_database_refuses_to_update_or_delete_audit_events(config: Path) -> None:
    import sqlite3

    seed(config)
    database = config.read_text(encoding="utf-8").split('"')[1].removeprefix("sqlite:///")
    with closing(sqlite3.connect(database)) as connection:
        for statement in ("UPDATE audit_event SET actor = 'someone'", "DELETE FROM audit_event"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                connection.execute(statement)
        count = connection.execute("SELECT count(*) FROM audit_event").fetchone()[0]
    assert count == 2
