"""When the database cannot answer, authentication fails closed with a clear 503, nothing
reaches the upstream, and the gateway recovers by itself when the database is back."""

from __future__ import annotations

import httpx2
from sqlalchemy.engine import make_url

from tests.conftest import Harness
from tests.integration.test_postgres import admin_connection, pg_empty, pg_gatepass, pg_url  # noqa: F401

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 4,
    "messages": [{"role": "user", "content": "x"}],
}


def post(harness: Harness, key: str) -> httpx2.Response:
    return httpx2.post(harness.base + "/v1/messages", headers={"x-api-key": key}, json=BODY)


def set_connections(database: str, allowed: bool) -> None:
    with admin_connection() as admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def test_authentication_fails_closed_while_the_database_is_away(pg_gatepass: Harness) -> None:  # noqa: F811
    key = pg_gatepass.create_key("k")
    assert post(pg_gatepass, key).status_code == 200
    database = make_url(pg_gatepass.settings.database_url).database
    assert database is not None
    set_connections(database, allowed=False)
    try:
        pg_gatepass.gateway.keys.invalidate()  # the cached lookup would otherwise still answer
        response = post(pg_gatepass, key)
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "api_error"
        assert "temporarily unavailable" in response.json()["error"]["message"]
        assert response.headers["request-id"]
        assert httpx2.get(pg_gatepass.url + "/readyz").status_code == 503
        assert len(pg_gatepass.fake.requests) == 1
    finally:
        set_connections(database, allowed=True)
    assert post(pg_gatepass, key).status_code == 200
    assert httpx2.get(pg_gatepass.url + "/readyz").status_code == 200
    rows = pg_gatepass.wait_for_logs(2)
    assert [row.status for row in rows] == [200, 200]
