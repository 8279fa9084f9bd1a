"""contacts per session (filled from the private chats already stored); workflow names
unique per owner (and among the global ones), not across tenants

Revision ID: 4b1f0c9d2e7a
Revises: a7c3e1f05b2d
Create Date: 2026-12-03 10:25:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4b1f0c9d2e7a'
down_revision = 'a7c3e1f05b2d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.String(length=32), nullable=False),
    sa.Column('jid', sa.String(length=128), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('name', sa.String(length=256), nullable=True),
    sa.Column('push_name', sa.String(length=256), nullable=True),
    sa.Column('saved', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['wa_sessions.id'], name=op.f('fk_contacts_session_id_wa_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('session_id', 'jid', name='uq_contacts_jid')
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index('ix_contacts_phone', ['session_id', 'phone'], unique=False)
    # Everyone the session already had a private chat with is a contact.
    op.execute("""
        INSERT INTO contacts (session_id, jid, phone, name, push_name, saved, source,
                              created_at, updated_at)
        SELECT session_id,
               CASE WHEN chat_phone IS NOT NULL THEN chat_phone || '@s.whatsapp.net'
                    ELSE chat_jid END,
               MAX(chat_phone), NULL,
               MAX(CASE WHEN direction = 'in' THEN sender_name END),
               false, 'chat', MIN(created_at), MAX(created_at)
        FROM messages
        WHERE is_group = false AND (chat_jid LIKE '%@s.whatsapp.net' OR chat_jid LIKE '%@lid')
        GROUP BY session_id, CASE WHEN chat_phone IS NOT NULL
                                  THEN chat_phone || '@s.whatsapp.net' ELSE chat_jid END
    """)

    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.drop_constraint('uq_workflows_name', type_='unique')
        batch_op.create_unique_constraint('uq_workflows_owner_name', ['owner_id', 'name'])
        batch_op.create_index('uq_workflows_global_name', ['name'], unique=True,
                              sqlite_where=sa.text('owner_id IS NULL'),
                              postgresql_where=sa.text('owner_id IS NULL'))


def downgrade():
    # Fails if two owners now share a workflow name: rename one of them first.
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.drop_index('uq_workflows_global_name')
        batch_op.drop_constraint('uq_workflows_owner_name', type_='unique')
        batch_op.create_unique_constraint('uq_workflows_name', ['name'])
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_phone')
    op.drop_table('contacts')
