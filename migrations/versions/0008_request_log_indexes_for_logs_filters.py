"""request log indexes for the /logs filters; PostgreSQL full-text index of request bodies

Revision ID: 0008
Revises: 0007

`/logs` shows the newest 100 rows matching its filters (ORDER BY id DESC LIMIT 100) and the
totals over all of them. Filtering by key name or by status had no index (a full scan of
request_log for the rows and another for the totals), and by user the (user_email,
created_at) index needed every row of the user fetched and sorted before the first 100.
(key_name, id) and (user_email, id) give the newest rows already in order; errors get a
partial (status, id) index WHERE status >= 400, small because errors are few (the query
states `status >= 400` for an error status so the planner can use it). On PostgreSQL,
content search computed to_tsvector(...) for every captured body: a GIN index on that same
expression (SQLite has its FTS5 table already).

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

import gatepass.store.types


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# exactly the expression admin_queries.search_request_ids matches, so the planner can use it
BODY_TSVECTOR = "to_tsvector('simple', (request_text || ' ') || response_text)"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.create_index('ix_request_log_key_name_id', ['key_name', 'id'], unique=False)
        batch_op.create_index('ix_request_log_user_email_id', ['user_email', 'id'], unique=False)
        # superseded by (user_email, id); each index is paid by every proxied request's row
        batch_op.drop_index('ix_request_log_user_created')
        batch_op.create_index(
            'ix_request_log_errors', ['status', 'id'], unique=False,
            sqlite_where=sa.text('status >= 400'), postgresql_where=sa.text('status >= 400'),
        )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            'ix_request_body_text_search', 'request_body', [sa.text(BODY_TSVECTOR)],
            unique=False, postgresql_using='gin',
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_request_body_text_search', table_name='request_body')
    with op.batch_alter_table('request_log', schema=None) as batch_op:
        batch_op.create_index(
            'ix_request_log_user_created', ['user_email', 'created_at'], unique=False
        )
        batch_op.drop_index('ix_request_log_user_email_id')
        batch_op.drop_index('ix_request_log_errors')
        batch_op.drop_index('ix_request_log_key_name_id')
