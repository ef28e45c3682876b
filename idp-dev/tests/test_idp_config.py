"""Users files, the demo configuration and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from idp_dev import ConfigError, IdpConfig, load_config
from idp_dev.cli import parse_args

EXAMPLE = Path(__file__).parents[1] / "users.example.toml"


def test_example_users_file_loads() -> None:
    config = load_config(EXAMPLE)
    alice = next(u for u in config.users if u.email == "alice@corp.example")
    assert alice.groups == ("engineering", "admins")
    assert alice.claims == {"department": "R&D"}
    carol = next(u for u in config.users if u.email == "carol@corp.example")
    assert carol.sub == "u-carol"
    assert carol.email_verified is False
    cli = next(c for c in config.clients if c.client_id == "gatepass-cli")
    assert cli.is_public
    assert cli.auth_methods == ("none",)


def test_json_users_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(
        json.dumps(
            {
                "groups_claim": "roles",
                "users": [{"email": "dan@corp.example", "password": "p", "groups": ["x"]}],
                "clients": [{"client_id": "c", "redirect_uris": ["http://127.0.0.1/cb"]}],
                "switches": {"wrong_iss": True},
            }
        )
    )
    config = load_config(path)
    assert config.groups_claim == "roles"
    assert config.users[0].groups == ("x",)
    assert config.switches.wrong_iss is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('grups_claim = "roles"', "unknown keys grups_claim"),
        ('[[users]]\nemail = "a@b.c"\npassword = "p"\nadmin = true', "unknown keys admin"),
        ('[[users]]\nemail = "not-an-email"\npassword = "p"', "not an address"),
        ('[[users]]\nemail = "a@b.c"\npassword = "p"\ngroups = "admins"', "expected tuple"),
        ('[[clients]]\nclient_id = "c"\nredirect_uris = []', "no redirect_uris"),
        (
            '[[clients]]\nclient_id = "c"\nredirect_uris = ["http://x/"]\n'
            'auth_methods = ["client_secret_basic"]',
            "does not fit",
        ),
        ("[switches]\nwrong_issuer = true", "unknown switches"),
        ('signing_alg = "HS256"', "unsupported signing_alg"),
        (
            '[[users]]\nemail = "a@b.c"\npassword = "p"\n[[users]]\nemail = "A@b.c"\npassword = "q"',
            "duplicate user email",
        ),
    ],
)
def test_mistakes_in_a_users_file_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_demo_config_has_alice_bob_and_the_gatepass_client() -> None:
    config = IdpConfig.demo()
    assert [u.email for u in config.users] == ["alice@corp.example", "bob@corp.example"]
    (client,) = config.clients
    assert client.client_id == "gatepass"
    assert client.client_secret == "gatepass-dev-secret"
    assert client.loopback_any_port


def test_demo_config_takes_redirect_uris_and_overrides() -> None:
    config = IdpConfig.demo(redirect_uris=["http://127.0.0.1:8000/cb"], groups_claim="roles")
    assert config.clients[0].redirect_uris == ("http://127.0.0.1:8000/cb",)
    assert config.groups_claim == "roles"


def test_command_line_defaults() -> None:
    args = parse_args([])
    assert (args.host, args.port, args.users, args.switch) == ("127.0.0.1", 9000, None, [])
