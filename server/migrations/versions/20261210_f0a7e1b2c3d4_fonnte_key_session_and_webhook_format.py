"""fonnte compatibility: API keys bound to one session, webhook body format

Revision ID: f0a7e1b2c3d4
Revises: 4b1f0c9d2e7a
Create Date: 2026-12-10 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f0a7e1b2c3d4'
down_revision = '4b1f0c9d2e7a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_api_keys_session_id'), ['session_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_api_keys_session_id_wa_sessions'),
                                    'wa_sessions', ['session_id'], ['id'],
                                    ondelete='CASCADE')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('format', sa.String(length=16), server_default='kabar',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('format')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_api_keys_session_id_wa_sessions'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_api_keys_session_id'))
        batch_op.drop_column('session_id')
