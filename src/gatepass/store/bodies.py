"""Conversation text of proxied requests, kept only when `logs.capture = "full"`.

Separate from `request_log` so that the metadata rows stay small and budgets fast. SQLite
indexes the text in an FTS5 table (`request_body_fts`, created by the migration); PostgreSQL
searches it with `to_tsvector`/`plainto_tsquery`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from gatepass.store.types import UTCDateTime, utcnow

# Content search on PostgreSQL (admin_queries.search_request_ids) matches this expression; a GIN
# index on exactly it (migration 0008) lets the planner use the index. The parentheses are as
# PostgreSQL writes the expression back, or Alembic's compare sees a change. SQLite searches
# its FTS5 table instead, so the index is PostgreSQL's only.
REQUEST_BODY_TSVECTOR = "to_tsvector('simple', (request_text || ' ') || response_text)"


class RequestBody(SQLModel, table=True):
    __tablename__ = "request_body"
    __table_args__ = (
        Index(
            "ix_request_body_text_search", text(REQUEST_BODY_TSVECTOR), postgresql_using="gin"
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    request_id: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    request_text: str = Field(default="", sa_column=Column(Text(), nullable=False))
    response_text: str = Field(default="", sa_column=Column(Text(), nullable=False))
