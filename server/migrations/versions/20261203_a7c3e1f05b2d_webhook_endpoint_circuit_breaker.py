"""webhook endpoint circuit breaker: paused_until

An endpoint paused after failures in a row stays enabled (its events are still queued)
and is probed at ``paused_until``. Endpoints that the old code paused by disabling them
are turned into paused ones, probed at once.

Revision ID: a7c3e1f05b2d
Revises: b7c8d9e0f1a2
Create Date: 2026-12-03 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c3e1f05b2d'
down_revision = 'b7c8d9e0f1a2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_until', sa.DateTime(timezone=True),
                                      nullable=True))
    op.execute(sa.text(
        "UPDATE webhook_endpoints SET enabled = true, paused_until = CURRENT_TIMESTAMP "
        "WHERE enabled = false AND paused_reason LIKE 'Paused after %'"))


def downgrade():
    op.execute(sa.text(
        "UPDATE webhook_endpoints SET enabled = false "
        "WHERE paused_until IS NOT NULL"))
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('paused_until')
