"""The admin surface on PostgreSQL: tsvector content search and the append-only audit trail."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.app import create_app
from gatepass.config import load_settings
from gatepass.devtools.server import serve_in_thread
from gatepass.runtime import Gateway
from tests.conftest import SECRET_KEY, Harness, Upstream, seed
from tests.integration.admin_support import api, make_token
from tests.integration.test_postgres import pg_empty, pg_url  # noqa: F401  (fixtures)


@pytest.fixture
def pg_full_capture(pg_url: str, upstream: Upstream) -> Iterator[Harness]:  # noqa: F811
    settings = load_settings(
        environ={},
        environment="development",
        database_url=pg_url,
        secret_key=SECRET_KEY,
        log_flush_interval=0.02,
        logs={"capture": "full"},
    )
    gateway = Gateway(settings)
    harness = Harness(settings, gateway, upstream)
    seed(harness, upstream.url)
    with serve_in_thread(create_app(settings, gateway)) as url:
        harness.url = url
        gateway.log_writer.on_written.append(harness.on_written)
        yield harness


def test_content_search_finds_requests_on_postgresql(pg_full_capture: Harness) -> None:
    harness = pg_full_capture
    secret = harness.create_key("pg")
    for words in ("the purple elephant dances", "a green giraffe sings"):
        reply = httpx2.post(
            harness.base + "/v1/messages",
            headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
            json={"model": "claude-haiku-4-5", "max_tokens": 8,
                  "messages": [{"role": "user", "content": words}]},
            timeout=30,
        )  # fmt: skip
        assert reply.status_code == 200
    harness.wait_for_logs(2)
    token = make_token(harness, read_only=True)
    with api(harness, token) as http:
        found = http.get("/logs", params={"q": "purple elephant"}).json()
        missing = http.get("/logs", params={"q": "zebra"}).json()
    assert found["totals"]["requests"] == 1
    assert missing["totals"]["requests"] == 0
    assert missing["data"] == []


def test_postgresql_refuses_to_delete_audit_events(pg_full_capture: Harness) -> None:
    harness = pg_full_capture
    make_token(harness)  # leaves an admin_token.create event

    async def delete(session: AsyncSession) -> None:
        await session.exec(text("DELETE FROM audit_event"))  # type: ignore[call-overload]

    with pytest.raises(DBAPIError, match="append-only"):
        harness.store(delete)
