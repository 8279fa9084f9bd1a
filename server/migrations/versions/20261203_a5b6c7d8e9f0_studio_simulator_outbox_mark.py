"""studio simulators: where the outbox stood at the last reset

A reply queued by the conversation before a reset (still queued, or on its way) arrived
after it and showed in the new conversation. The simulator now remembers the last outbox
row of its session at a reset; replies queued before it are cancelled or hidden.

Revision ID: a5b6c7d8e9f0
Revises: e4f5a6b7c8d9
Create Date: 2026-12-03 18:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a5b6c7d8e9f0'
down_revision = 'e4f5a6b7c8d9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('studio_simulators', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('outbox_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                      server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('studio_simulators', schema=None) as batch_op:
        batch_op.drop_column('outbox_seq')
