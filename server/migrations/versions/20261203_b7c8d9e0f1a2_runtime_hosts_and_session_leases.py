"""runtime hosts; session leases with fencing tokens; who claimed a command

Revision ID: b7c8d9e0f1a2
Revises: a1b2c3d4e5f6
Create Date: 2026-12-03 11:00:00

"""
from alembic import op
import sqlalchemy as sa

import server.models.base


# revision identifiers, used by Alembic.
revision = 'b7c8d9e0f1a2'
down_revision = 'a1b2c3d4e5f6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'runtime_hosts',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('hostname', sa.String(length=128), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('draining', sa.Boolean(), nullable=False),
        sa.Column('started_at', server.models.base.UTCDateTime(), nullable=False),
        sa.Column('beat_at', server.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_runtime_hosts')))
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_holder', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_until', server.models.base.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column(
            'lease_token', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
            server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_wa_sessions_lease_holder'), ['lease_holder'],
                              unique=False)
    with op.batch_alter_table('runtime_commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('runtime_commands', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
    with op.batch_alter_table('wa_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wa_sessions_lease_holder'))
        batch_op.drop_column('lease_token')
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_holder')
    op.drop_table('runtime_hosts')
