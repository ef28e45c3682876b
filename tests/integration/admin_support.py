"""Helpers for the admin tests: admin tokens, an admin API client, audit reads (no tests here)."""

from __future__ import annotations

import re
from typing import Any

import httpx2
from idp_dev import testing as idp_testing
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.manage import admin_tokens
from gatepass.manage import identity as identity_ops
from gatepass.store.events import AuditEvent
from tests.conftest import IDP_NAME, Harness, SignIn


def make_token(harness: Harness, name: str = "ops", *, read_only: bool = False) -> str:
    issued = harness.store(
        lambda s: admin_tokens.create_admin_token(
            s, harness.keyring, name=name, read_only=read_only
        )
    )
    return issued.secret


def api(harness: Harness, token: str | None = None) -> httpx2.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx2.Client(
        base_url=harness.url + "/admin/api", headers=headers, timeout=30, follow_redirects=False
    )


def audit(harness: Harness, action: str | None = None) -> list[AuditEvent]:
    async def read(session: AsyncSession) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(col(AuditEvent.id))
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list((await session.exec(query)).all())

    return harness.store(read)


def make_alice_admin(signin: SignIn) -> None:
    async def add(session: AsyncSession) -> None:
        await identity_ops.add_mapping(
            session, idp=IDP_NAME, group="admins", key="eng-key", priority=1, role="admin"
        )

    signin.gatepass.store(add)


def admin_browser(signin: SignIn, who: tuple[str, str]) -> tuple[httpx2.Client, httpx2.Response]:
    """A browser signed in at /admin through idp-dev; and the response to the callback."""
    http = httpx2.Client(base_url=signin.gatepass.url, timeout=30, follow_redirects=False)
    started = http.get("/admin")
    assert started.status_code in (302, 303), started.text
    callback = idp_testing.sign_in(http, started.headers["location"], login=who[0], password=who[1])
    return http, http.get(callback)


def csrf_token(http: httpx2.Client) -> str:
    page = http.get("/admin/keys")
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def error_of(response: httpx2.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error
