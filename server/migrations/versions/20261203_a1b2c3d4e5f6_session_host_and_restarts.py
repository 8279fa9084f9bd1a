"""sessions: where each runs, how often its process restarted

Revision ID: a1b2c3d4e5f6
Revises: 872d5404fb45
Create Date: 2026-12-03 11:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a1b2c3d4e5f6'
down_revision = '872d5404fb45'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('restarts', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.drop_column('restarts')
        batch_op.drop_column('host')
