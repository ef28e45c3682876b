"""Admin sign-in through the IdP: server-side sessions, CSRF, and access ending at once."""

from __future__ import annotations

from contextlib import closing

from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.manage import identity as identity_ops
from gatepass.store import identity_queries
from tests.conftest import SignIn
from tests.integration.admin_support import (
    admin_browser,
    api,
    audit,
    csrf_token,
    error_of,
    make_alice_admin,
    make_token,
)

ALICE = ("alice@corp.example", "alice-password")
BOB = ("bob@corp.example", "bob-password")


def test_an_admin_signs_in_and_gets_a_server_side_session_cookie(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, landed = admin_browser(signin, ALICE)
    with closing(http):
        assert landed.status_code == 303
        cookie = landed.headers["set-cookie"].lower()
        assert cookie.startswith("gatepass_admin=")
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/" in cookie
        assert "secure" not in cookie  # plain http on loopback
        keys = http.get("/admin/api/keys")
    assert keys.status_code == 200
    assert any(e.action == "admin.sign_in" and e.actor == ALICE[0] for e in audit(signin.gatepass))


def test_a_signed_in_person_without_the_admin_role_gets_403(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, landed = admin_browser(signin, BOB)
    with closing(http):
        assert landed.status_code == 403
        assert "gatepass_admin" not in landed.headers.get("set-cookie", "")
        response = http.get("/admin/api/keys")
    assert response.status_code == 401
    denied = [e for e in audit(signin.gatepass) if e.action == "admin.denied"]
    assert denied
    assert denied[0].actor == BOB[0]


def test_session_mutations_need_the_csrf_token(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        token = csrf_token(http)
        refused = http.post("/admin/api/keys", json={"name": "x1", "models": "*"})
        wrong = http.post(
            "/admin/api/keys", json={"name": "x1", "models": "*"}, headers={"x-csrf-token": "no"}
        )
        made = http.post(
            "/admin/api/keys", json={"name": "x1", "models": "*"}, headers={"x-csrf-token": token}
        )
    assert refused.status_code == 403
    assert error_of(refused)["type"] == "forbidden"
    assert wrong.status_code == 403
    assert made.status_code == 201
    (event,) = audit(signin.gatepass, "key.create")[-1:]
    assert event.actor == ALICE[0]
    assert event.target == "x1"


def test_each_sign_in_gets_a_new_session_id(signin: SignIn) -> None:
    make_alice_admin(signin)
    first, _ = admin_browser(signin, ALICE)
    second, _ = admin_browser(signin, ALICE)
    with closing(first), closing(second):
        assert first.cookies["gatepass_admin"] != second.cookies["gatepass_admin"]


def test_sign_out_deletes_the_session(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        cookie = http.cookies["gatepass_admin"]
        token = csrf_token(http)
        assert http.post("/admin/signout", data={"csrf_token": token}).status_code == 200
        http.cookies.set("gatepass_admin", cookie)  # a copy kept by an attacker
        response = http.get("/admin/api/keys")
    assert response.status_code == 401


def test_disabling_the_admin_ends_the_session_at_once(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        assert http.get("/admin/api/keys").status_code == 200
        signin.gatepass.store(
            lambda s: identity_ops.set_user_disabled(s, email=ALICE[0], disabled=True)
        )
        response = http.get("/admin/api/keys")
    assert response.status_code == 401


def test_removing_the_admin_mapping_ends_the_session_at_once(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)

    async def remove_admin_mapping(session: AsyncSession) -> None:
        for mapping, _, _ in await identity_queries.list_mappings(session):
            if mapping.role == "admin":
                await identity_ops.remove_mapping(session, mapping_id=mapping.id or 0)

    with closing(http):
        assert http.get("/admin/api/keys").status_code == 200
        signin.gatepass.store(remove_admin_mapping)
        first = http.get("/admin/api/keys")
        second = http.get("/admin/api/keys")
    assert first.status_code == 403
    assert second.status_code == 401  # the session row is gone


def test_admin_pages_create_a_key_once_and_check_who_gets_what(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        token = csrf_token(http)
        no_csrf = http.post("/admin/keys", data={"name": "page-key", "models": "*"})
        made = http.post(
            "/admin/keys",
            data={"csrf_token": token, "action": "create", "name": "page-key", "models": "*"},
        )
        again = http.get("/admin/keys")
        check = http.post(
            "/admin/mappings",
            data={"csrf_token": token, "action": "check", "idp": "corp",
                  "email": "carol@corp.example", "groups": "sales"},
        )  # fmt: skip
        audit_page = http.get("/admin/audit", params={"action": "key.create"})
    assert no_csrf.status_code == 403
    assert made.status_code == 200
    assert 'id="new-secret"' in made.text
    assert 'id="new-secret"' not in again.text
    assert "page-key" in again.text
    assert made.headers["x-frame-options"] == "DENY"
    assert "sales-key" in check.text
    assert "page-key" in audit_page.text


def test_an_admin_token_disables_a_signed_in_user_whose_session_then_ends(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)
    token = make_token(signin.gatepass, "hr-sync")
    with closing(http), api(signin.gatepass, token) as admin:
        assert http.get("/admin/api/users").status_code == 200
        listed = admin.get("/users").json()["data"]
        disabled = admin.post(f"/users/{ALICE[0]}/disable")
        after = http.get("/admin/api/users")
        enabled = admin.post(f"/users/{ALICE[0]}/enable")
    assert [u["email"] for u in listed] == [ALICE[0]]
    assert disabled.status_code == 200
    assert disabled.json()["data"][0]["disabled"] is True
    assert after.status_code == 401
    assert enabled.json()["data"][0]["disabled"] is False
    events = [e for e in audit(signin.gatepass) if e.action.startswith("user.")]
    assert [(e.action, e.actor) for e in events] == [
        ("user.disable", "token:hr-sync"),
        ("user.enable", "token:hr-sync"),
    ]


def test_refused_changes_are_audited_without_their_bodies(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        http.post("/admin/api/keys", json={"name": "nope", "models": "*"})  # no CSRF token
        http.delete("/admin/api/mappings/999", headers={"x-csrf-token": csrf_token(http)})
    refused = [e for e in audit(signin.gatepass) if e.action.startswith("api.")]
    assert [(e.action, e.outcome, e.actor) for e in refused] == [
        ("api.create_key", "denied", ALICE[0]),
        ("api.delete_mapping", "failure", ALICE[0]),
    ]
    assert refused[1].target == "999"
    assert "nope" not in str(refused[0].detail)


def test_revoking_an_admin_session_ends_it_at_once(signin: SignIn) -> None:
    make_alice_admin(signin)
    http, _ = admin_browser(signin, ALICE)
    token = make_token(signin.gatepass, "security")
    with closing(http), api(signin.gatepass, token) as admin:
        assert http.get("/admin/api/keys").status_code == 200
        (listed,) = admin.get("/sessions").json()["data"]
        revoked = admin.delete(f"/sessions/{listed['id']}")
        again = admin.delete(f"/sessions/{listed['id']}")
        after = http.get("/admin/api/keys")
    assert listed["email"] == ALICE[0]
    assert "session_hash" not in listed
    assert revoked.status_code == 204
    assert again.status_code == 404
    assert after.status_code == 401
    (event,) = audit(signin.gatepass, "admin_session.revoke")
    assert (event.actor, event.target) == ("token:security", ALICE[0])
    assert "session_hash" not in str(event.detail)
