"""webhook deliveries: an index of the open ones only

"Is an older delivery of this chat still open?" (the dispatcher's order check) scanned
every older delivery of the chat in the (endpoint, key, id) index, delivered ones
included: its cost grew with the chat's history. This partial index holds only the
open deliveries (pending, delivering, failed), a handful whatever the history.

Revision ID: e4f5a6b7c8d9
Revises: c3d1a9e6f7b8
Create Date: 2026-12-03 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4f5a6b7c8d9'
down_revision = 'c3d1a9e6f7b8'
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'delivering', 'failed')"


def upgrade():
    op.create_index(
        'ix_webhook_deliveries_open',
        'webhook_deliveries',
        ['endpoint_id', 'ordering_key', 'id'],
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade():
    op.drop_index('ix_webhook_deliveries_open', table_name='webhook_deliveries')
