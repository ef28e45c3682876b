"""`/logs`: filters, totals, content search over captured bodies, detail, tail and retention."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta

import httpx2
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store.bodies import RequestBody
from gatepass.store.models import RequestLog
from gatepass.store.types import utcnow
from tests.conftest import Harness, SignIn
from tests.integration.admin_support import admin_browser, api, make_alice_admin, make_token

ALICE = ("alice@corp.example", "alice-password")
LEAKED = "sk-ant-api03-leakedleakedleaked0123456789"


def send(harness: Harness, secret: str, text: str, *, stream: bool = False) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 20,
        "stream": stream,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    response = httpx2.post(harness.base + "/v1/messages", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def bodies(harness: Harness) -> list[RequestBody]:
    async def read(session: AsyncSession) -> list[RequestBody]:
        return list((await session.exec(select(RequestBody))).all())

    return harness.store(read)


def test_full_capture_makes_conversations_searchable_and_redacted(
    make_signin: Callable[..., SignIn],
) -> None:
    signin = make_signin(logs={"capture": "full"})
    make_alice_admin(signin)
    harness = signin.gatepass
    send(harness, signin.eng_key, f"where is the purple elephant? my key is {LEAKED}")
    send(harness, signin.eng_key, "tell me about giraffes", stream=True)
    harness.wait_for_logs(2)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        found = http.get("/logs", params={"q": "purple elephant"})
        nothing = http.get("/logs", params={"q": "zebra"})
        all_rows = http.get("/logs")
        (row_id,) = re.findall(r'data-id="(\d+)"', found.text)
        detail = http.get(f"/logs/{row_id}")
    assert found.status_code == 200
    assert found.text.count('class="log"') == 1
    assert "<b>1</b> requests" in found.text
    assert nothing.text.count('class="log"') == 0
    assert all_rows.text.count('class="log"') == 2
    assert "purple elephant" in detail.text
    assert LEAKED not in detail.text
    assert "[REDACTED]" in detail.text
    with api(harness, make_token(harness, read_only=True)) as admin:
        searched = admin.get("/logs", params={"q": "elephant"}).json()
    assert searched["totals"]["requests"] == 1
    stored = bodies(harness)
    assert len(stored) == 2
    assert all(LEAKED not in b.request_text for b in stored)
    assert all(b.response_text for b in stored)  # JSON and SSE responses both read


def test_metadata_capture_keeps_no_conversation_text(signin: SignIn) -> None:
    send(signin.gatepass, signin.eng_key, "a private question")
    signin.gatepass.wait_for_logs(1)
    assert bodies(signin.gatepass) == []


def test_logs_filters_totals_and_tail_for_an_admin(signin: SignIn) -> None:
    make_alice_admin(signin)
    harness = signin.gatepass
    send(harness, signin.eng_key, "one")
    harness.wait_for_logs(1)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        page = http.get("/logs", params={"key": "eng-key", "model": "claude-haiku-4-5"})
        other = http.get("/logs", params={"key": "sales-key"})
        bad = http.get("/logs", params={"status": "abc"})
        newest = int(page.text.split('data-id="')[1].split('"')[0])
        quiet = http.get("/logs/tail", params={"after_id": newest}).json()
        send(harness, signin.eng_key, "two")
        harness.wait_for_logs(2)
        tail = http.get("/logs/tail", params={"after_id": newest}).json()
    assert page.text.count('class="log"') == 1
    assert "<b>1</b> requests" in page.text
    assert other.text.count('class="log"') == 0
    assert bad.status_code == 400
    assert quiet["data"] == []
    assert [r["id"] for r in tail["data"]] == [newest + 1]


def test_logs_open_on_the_last_day_unless_a_window_is_given(signin: SignIn) -> None:
    make_alice_admin(signin)
    harness = signin.gatepass
    send(harness, signin.eng_key, "today")
    harness.wait_for_logs(1)

    async def add_older(session: AsyncSession) -> None:
        session.add(
            RequestLog(
                created_at=utcnow() - timedelta(days=3),
                request_id="req_three_days_ago",
                method="POST",
                path="/v1/messages",
                key_name="eng-key",
                status=200,
            )
        )

    harness.store(add_older)
    http, _ = admin_browser(signin, ALICE)
    with closing(http):
        default = http.get("/logs")
        week = http.get("/logs", params={"since": "7d"})
        tail = http.get("/logs/tail", params={"after_id": 0}).json()
        tail_week = http.get("/logs/tail", params={"after_id": 0, "since": "7d"}).json()
    assert default.text.count('class="log"') == 1
    assert "<b>1</b> requests" in default.text
    assert 'name="since" value="24h"' in default.text  # the window in force is shown
    assert week.text.count('class="log"') == 2
    assert "<b>2</b> requests" in week.text
    assert len(tail["data"]) == 1
    assert len(tail_week["data"]) == 2


def test_logs_need_an_admin_session(signin: SignIn) -> None:
    with httpx2.Client(base_url=signin.gatepass.url, follow_redirects=False) as http:
        page = http.get("/logs")
        tail = http.get("/logs/tail")
    assert page.status_code in (302, 303)  # to the IdP
    assert tail.status_code == 401


def test_retention_purge_deletes_rows_older_than_retention_days(gatepass: Harness) -> None:
    secret = gatepass.create_key("kept")
    send(gatepass, secret, "recent")
    gatepass.wait_for_logs(1)

    async def add_old(session: AsyncSession) -> None:
        session.add(
            RequestLog(
                created_at=utcnow() - timedelta(days=91),
                request_id="req_old",
                method="POST",
                path="/v1/messages",
                status=200,
            )
        )

    gatepass.store(add_old)
    loop = gatepass.gateway.loop
    assert loop is not None
    deleted = asyncio.run_coroutine_threadsafe(gatepass.gateway.purge_logs(), loop).result(10)
    assert deleted == 1
    remaining = gatepass.wait_for_logs(1)
    assert [r.request_id for r in remaining] != ["req_old"]
    assert len(remaining) == 1
