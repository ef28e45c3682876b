"""The control API: in-process handle, `/_control` over HTTP, and a provider in a subprocess."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from idp_dev import Client, IdpConfig, IdpHandle, User, create_app, run_idp, run_idp_process
from idp_dev.testing import RelyingParty
from starlette.testclient import TestClient

EXAMPLE = Path(__file__).parents[1] / "users.example.toml"


def test_run_idp_starts_the_demo_provider_in_one_line(http: httpx2.Client) -> None:
    with run_idp() as idp:
        assert idp.issuer.startswith("http://127.0.0.1:")
        rp = RelyingParty(http, idp.issuer)
        assert rp.verify(rp.login()["id_token"]).claims["sub"] == "alice"


def test_a_configured_issuer_is_used_in_tokens_and_discovery(http: httpx2.Client) -> None:
    with run_idp(IdpConfig.demo(issuer="http://localhost:1234/")) as idp:
        assert idp.issuer == "http://localhost:1234"
        meta = http.get(f"{idp.base_url}/.well-known/openid-configuration").json()
        assert meta["issuer"] == "http://localhost:1234"


def test_switches_are_set_and_read_over_http(idp: IdpHandle, http: httpx2.Client) -> None:
    response = http.post(f"{idp.issuer}/_control/switches", json={"wrong_iss": True})
    assert response.status_code == 200
    assert response.json()["wrong_iss"] is True
    assert idp.switches.wrong_iss is True
    assert http.post(f"{idp.issuer}/_control/reset").json()["wrong_iss"] is False


def test_bad_control_requests_are_400_with_a_reason(idp: IdpHandle, http: httpx2.Client) -> None:
    response = http.post(f"{idp.issuer}/_control/switches", json={"no_such_switch": True})
    assert response.status_code == 400
    assert "no_such_switch" in response.json()["error"]
    response = http.patch(f"{idp.issuer}/_control/users/nobody@corp.example", json={})
    assert response.status_code == 400


def test_control_refuses_a_non_loopback_host_header(idp: IdpHandle, http: httpx2.Client) -> None:
    # What a DNS-rebinding page would send.
    response = http.post(
        f"{idp.issuer}/_control/switches",
        json={"wrong_iss": True},
        headers={"Host": "evil.example"},
    )
    assert response.status_code == 403
    assert idp.switches.wrong_iss is False


def test_control_refuses_a_non_loopback_peer() -> None:
    app = create_app(IdpConfig.demo(), "http://127.0.0.1:9000")
    with TestClient(app, base_url="http://127.0.0.1:9000", client=("10.0.0.5", 5555)) as client:
        assert client.post("/_control/reset").status_code == 403
        assert client.get("/_control/switches").status_code == 403
        # The provider itself still answers.
        assert client.get("/.well-known/openid-configuration").status_code == 200


def test_control_refuses_form_posts(idp: IdpHandle, http: httpx2.Client) -> None:
    response = http.post(f"{idp.issuer}/_control/switches", data={"wrong_iss": "true"})
    assert response.status_code == 415


def test_users_and_clients_can_be_added_and_changed_over_http(
    idp: IdpHandle, http: httpx2.Client
) -> None:
    created = http.post(
        f"{idp.issuer}/_control/users",
        json={"email": "erin@corp.example", "password": "erin-pw", "groups": ["ops"]},
    )
    assert created.status_code == 201
    assert "password" not in created.json()
    changed = http.patch(
        f"{idp.issuer}/_control/users/erin@corp.example", json={"groups": ["ops", "oncall"]}
    )
    assert changed.json()["groups"] == ["ops", "oncall"]
    client = http.post(
        f"{idp.issuer}/_control/clients",
        json={"client_id": "new", "client_secret": "s", "redirect_uris": ["http://127.0.0.1/x"]},
    )
    assert client.status_code == 201
    assert "client_secret" not in client.json()
    rp = RelyingParty(
        http, idp.issuer, client_id="new", client_secret="s", redirect_uri="http://127.0.0.1/x"
    )
    claims = rp.verify(rp.login("erin@corp.example", "erin-pw")["id_token"]).claims
    assert claims["groups"] == ["ops", "oncall"]


def test_in_process_handle_adds_users_and_clients(idp: IdpHandle, http: httpx2.Client) -> None:
    idp.add_user(User(email="fay@corp.example", password="pw", groups=("x",)))
    idp.add_client(
        Client(client_id="late", redirect_uris=("http://127.0.0.1:4444/cb",), require_pkce=True)
    )
    rp = RelyingParty(
        http, idp.issuer, client_id="late", client_secret=None,
        redirect_uri="http://127.0.0.1:4444/cb",
    )  # fmt: skip
    assert rp.verify(rp.login("fay@corp.example", "pw")["id_token"]).claims["sub"] == "u-fay"


def test_restore_forgets_runtime_changes_and_grants(idp: IdpHandle, rp: RelyingParty) -> None:
    body = rp.login()
    idp.update_user("alice", groups=[])
    idp.set(wrong_iss=True)
    idp.restore()
    assert idp.switches.wrong_iss is False
    assert rp.refresh(body["refresh_token"]).json()["error"] == "invalid_grant"
    assert rp.verify(rp.login()["id_token"]).claims["groups"] == ["engineering", "admins"]


def test_subprocess_provider_is_steered_through_the_control_api(http: httpx2.Client) -> None:
    with run_idp_process(EXAMPLE, args=["--switch", "unverified_email"]) as idp:
        rp = RelyingParty(http, idp.issuer, redirect_uri="http://127.0.0.1:5000/auth/callback")
        claims = rp.verify(rp.login()["id_token"]).claims
        assert claims["email_verified"] is False
        assert claims["department"] == "R&D"
        idp.set(wrong_iss=True)
        assert rp.verify(rp.login()["id_token"]).claims["iss"] == "https://wrong-issuer.invalid"
        assert idp.reset().unverified_email is True  # start-up switches survive a reset
        old = rp.login()
        idp.disable_user("alice@corp.example")
        assert rp.refresh(old["refresh_token"]).json()["error"] == "invalid_grant"
        kids = idp.rotate_keys()
        assert kids["RS256"] in {k["kid"] for k in rp.jwks()["keys"]}  # type: ignore[attr-defined]


def test_subprocess_with_a_broken_users_file_fails_to_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("nonsense = 1")
    with pytest.raises(RuntimeError, match="did not start"), run_idp_process(path):
        pass
