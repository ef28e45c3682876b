"""user: recheck lease (one replica at a time asks the IdP) and the IdP grant lost

Revision ID: 0009
Revises: 0008

`recheck_lease_until`: the replica re-checking a person at the IdP holds this until it is
done, so two replicas never spend the same rotating refresh token. `idp_grant_lost_at`: set
when the IdP answered `invalid_grant`; until the person signs in again, every session of
theirs is refused instead of falling back to local checks.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel

import gatepass.store.types


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('gp_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recheck_lease_until', gatepass.store.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('idp_grant_lost_at', gatepass.store.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('gp_user', schema=None) as batch_op:
        batch_op.drop_column('idp_grant_lost_at')
        batch_op.drop_column('recheck_lease_until')
