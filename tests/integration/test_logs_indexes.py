"""The `/logs` indexes (migration 0008) exist on SQLite and PostgreSQL, and the statements
`admin_queries` sends for the page use them: each statement is recorded as it is executed,
then run again under EXPLAIN with the same parameters.

On SQLite (no ANALYZE: the app never runs one) the plan is fixed by the schema alone. On
PostgreSQL the planner goes by statistics, so the tables get enough rows and an ANALYZE.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlmodel.ext.asyncio.session import AsyncSession

from gatepass.store import admin_queries
from gatepass.store.admin_queries import LogFilter
from gatepass.store.db import create_engine, session_maker
from tests.integration.test_postgres import pg_empty, pg_url  # noqa: F401  (fixtures)

ROWS = 20_000  # 200 keys; one request in 20 an error (500), one in 100 from a heavy user
HEAVY = "heavy@corp.example"
BODIES = 5_000  # one in 500 mentions a purple elephant

SEQUENCE = f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ROWS}) "
LOG_ROWS = (
    "INSERT INTO request_log (created_at, request_id, method, path, key_id, key_name,"
    " user_email, model, provider, status, stream, input_tokens, output_tokens,"
    " cache_creation_input_tokens, cache_read_input_tokens, client_disconnected) "
    + SEQUENCE
    + "SELECT {created_at}, 'req_' || i, 'POST', '/v1/messages', i % 200, 'key-' || (i % 200),"
    f" CASE WHEN i % 100 = 1 THEN '{HEAVY}' ELSE 'user' || (i % 1000) || '@corp.example' END,"
    " 'claude-haiku-4-5', 'anthropic',"
    " CASE WHEN i % 20 = 0 THEN 500 ELSE 200 END, false, 10, 10, 0, 0, false FROM s"
)
BODY_ROWS = (
    "INSERT INTO request_body (request_id, created_at, request_text, response_text) "
    + SEQUENCE
    + "SELECT 'req_' || i, {created_at},"
    " CASE WHEN i % 500 = 0 THEN 'where is the purple elephant' ELSE 'hello there' END,"
    f" 'an answer' FROM s WHERE i <= {BODIES}"
)
NEW_INDEXES = {
    "ix_request_log_key_name_id",
    "ix_request_log_user_email_id",
    "ix_request_log_errors",
}


async def seed(url: str) -> None:
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"
    created_at = (
        "now() - (i * interval '1 second')"
        if postgres
        else "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || i || ' seconds')"
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(text(LOG_ROWS.format(created_at=created_at)))
            await connection.execute(text(BODY_ROWS.format(created_at=created_at)))
            if postgres:
                await connection.execute(text("ANALYZE request_log"))
                await connection.execute(text("ANALYZE request_body"))
    finally:
        await engine.dispose()


def plans(url: str, action: Callable[[AsyncSession], Awaitable[Any]]) -> tuple[Any, list[str]]:
    """What `action` returned, and the plan of each statement it executed."""

    async def run() -> tuple[Any, list[str]]:
        engine = create_engine(url)
        sent: list[tuple[str, Any]] = []

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            sent.append((statement, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        try:
            async with session_maker(engine)() as session:
                result = await action(session)
                statements = list(sent)
                connection = await session.connection()
                found = []
                for statement, parameters in statements:
                    rows = await connection.exec_driver_sql(explain + statement, parameters)
                    found.append("\n".join(str(row[-1]) for row in rows.all()))
                return result, found
        finally:
            await engine.dispose()

    return asyncio.run(run())


def page(log_filter: LogFilter) -> Callable[[AsyncSession], Awaitable[Any]]:
    """The `/logs` page's two queries: the newest 100 rows, and the totals."""

    async def action(session: AsyncSession) -> tuple[int, int]:
        rows = await admin_queries.search_request_logs(session, log_filter, limit=100)
        totals = await admin_queries.request_log_totals(session, log_filter)
        return len(rows), totals["requests"]

    return action


def search(words: str) -> Callable[[AsyncSession], Awaitable[Any]]:
    async def action(session: AsyncSession) -> list[str]:
        return await admin_queries.search_request_ids(session, text_query=words, limit=1000)

    return action


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_template: Path) -> str:
    db = tmp_path / "logs.db"
    shutil.copy(migrated_template, db)
    url = f"sqlite+aiosqlite:///{db}"
    asyncio.run(seed(url))
    return url


@pytest.fixture
def postgres_url(pg_url: str) -> str:  # noqa: F811
    asyncio.run(seed(pg_url))
    return pg_url


def test_sqlite_has_the_indexes_and_the_logs_page_reads_through_them(sqlite_url: str) -> None:
    async def schema(session: AsyncSession) -> dict[str, str]:
        found = await session.exec(  # type: ignore[call-overload]
            text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        )
        return {name: sql for name, sql in found.all()}

    indexes, _ = plans(sqlite_url, schema)
    assert indexes.keys() >= NEW_INDEXES
    assert indexes["ix_request_log_errors"].endswith("WHERE status >= 400")

    # newest rows in index order: no sort of every match first
    found, (rows, totals) = plans(sqlite_url, page(LogFilter(key="key-7")))
    assert found == (100, ROWS // 200)
    assert "ix_request_log_key_name_id" in rows
    assert "TEMP B-TREE" not in rows
    assert "ix_request_log_key_name_id" in totals

    found, (rows, totals) = plans(sqlite_url, page(LogFilter(user="user7@corp.example")))
    assert found == (ROWS // 1000, ROWS // 1000)
    assert "ix_request_log_user_email_id" in rows
    assert "TEMP B-TREE" not in rows
    assert "ix_request_log_user_email_id" in totals
    found, (rows, _totals) = plans(sqlite_url, page(LogFilter(user=HEAVY)))
    assert found == (100, ROWS // 100)
    assert "ix_request_log_user_email_id" in rows
    assert "TEMP B-TREE" not in rows

    found, (rows, totals) = plans(sqlite_url, page(LogFilter(status=500)))
    assert found == (100, ROWS // 20)
    assert "ix_request_log_errors" in rows
    assert "TEMP B-TREE" not in rows
    assert "ix_request_log_errors" in totals

    # the partial index has no successes in it: status 200 must not (and does not) use it
    found, (rows, totals) = plans(sqlite_url, page(LogFilter(status=200)))
    assert found == (100, ROWS - ROWS // 20)
    assert "ix_request_log_errors" not in rows + totals

    # content search walks the FTS index newest first and stops at the limit
    ids, (plan,) = plans(sqlite_url, search("purple elephant"))
    assert ids == [f"req_{i}" for i in range(BODIES, 0, -500)]
    assert "TEMP B-TREE" not in plan


def test_postgresql_has_the_indexes_and_the_logs_page_reads_through_them(
    postgres_url: str,
) -> None:
    async def schema(session: AsyncSession) -> dict[str, str]:
        found = await session.exec(  # type: ignore[call-overload]
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        )
        return {name: definition for name, definition in found.all()}

    indexes, _ = plans(postgres_url, schema)
    assert indexes.keys() >= NEW_INDEXES
    assert indexes["ix_request_log_errors"].endswith("WHERE (status >= 400)")
    assert "USING gin (to_tsvector('simple'::regconfig" in indexes["ix_request_body_text_search"]

    found, (rows, totals) = plans(postgres_url, page(LogFilter(key="key-7")))
    assert found == (100, ROWS // 200)
    assert "ix_request_log_key_name_id" in rows
    assert "ix_request_log_key_name_id" in totals

    # a heavy user's newest 100 straight from the index, not all 200 rows sorted
    found, (rows, _totals) = plans(postgres_url, page(LogFilter(user=HEAVY)))
    assert found == (100, ROWS // 100)
    assert "Index Scan Backward using ix_request_log_user_email_id" in rows

    found, (rows, totals) = plans(postgres_url, page(LogFilter(status=500)))
    assert found == (100, ROWS // 20)
    assert "ix_request_log_errors" in rows
    assert "ix_request_log_errors" in totals

    # the GIN index matches the expression search_request_ids compares with
    ids, (plan,) = plans(postgres_url, search("purple elephant"))
    assert ids == [f"req_{i}" for i in range(BODIES, 0, -500)]
    assert "ix_request_body_text_search" in plan
