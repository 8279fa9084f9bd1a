"""webhook_endpoints: run_id, the one-shot endpoint of a reply watch (n8n send-and-wait)

Revision ID: 5e7a1c0d9b42
Revises: f0a7e1b2c3d4
Create Date: 2026-12-03 12:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e7a1c0d9b42'
down_revision = 'f0a7e1b2c3d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_run_id'), ['run_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_run_id'))
        batch_op.drop_column('run_id')
