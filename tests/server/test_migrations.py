"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server import database
from server.models import db


def test_the_database_is_at_the_head_revision(app):
    head = database.head_revision()
    assert head is not None
    assert database.current_revision() == head


def test_the_models_match_the_migrated_schema(app):
    """A model change without a migration (or a migration that differs) shows up here:
    write one with ``kabar db migrate -m "..."``."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, _parents: (
                    not (type_ == "table" and name in database.UNMANAGED_TABLES)
                ),
            },
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "models and migrations disagree:\n" + "\n".join(map(str, differences))
