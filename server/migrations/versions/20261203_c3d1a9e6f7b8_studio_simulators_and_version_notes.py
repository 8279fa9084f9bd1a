"""studio_simulators (a user's simulator: its sandbox session and workflow);
workflow_versions.note (why a version was made, e.g. restored from another)

Revision ID: c3d1a9e6f7b8
Revises: 5e7a1c0d9b42
Create Date: 2026-12-03 14:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3d1a9e6f7b8'
down_revision = '5e7a1c0d9b42'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'studio_simulators',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.String(length=32), nullable=False),
        sa.Column('workflow_id', sa.Integer(), nullable=True),
        sa.Column('contact', sa.String(length=32), nullable=False),
        sa.Column('message_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('run_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'],
                                name=op.f('fk_studio_simulators_owner_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['session_id'], ['wa_sessions.id'],
                                name=op.f('fk_studio_simulators_session_id_wa_sessions'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'],
                                name=op.f('fk_studio_simulators_workflow_id_workflows'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_studio_simulators')),
        sa.UniqueConstraint('owner_id', name='uq_studio_simulators_owner'),
        sa.UniqueConstraint('session_id', name=op.f('uq_studio_simulators_session_id')),
    )
    with op.batch_alter_table('studio_simulators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_studio_simulators_owner_id'), ['owner_id'],
                              unique=False)
    with op.batch_alter_table('workflow_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table('workflow_versions', schema=None) as batch_op:
        batch_op.drop_column('note')
    with op.batch_alter_table('studio_simulators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_studio_simulators_owner_id'))
    op.drop_table('studio_simulators')
