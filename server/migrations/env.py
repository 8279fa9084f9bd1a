"""Alembic environment for Kabar (Flask-Migrate). Schema changes only happen here.

New revision: ``kabar db migrate -m "what changed"``, then read and fix the file.
"""

import logging

from alembic import context
from flask import current_app

from server import database
from server.models.base import UTCDateTime

config = context.config
logger = logging.getLogger("alembic.env")
# No fileConfig(): Kabar configures logging itself, and fileConfig would silence it.

target_db = current_app.extensions["migrate"].db


def get_engine():
    return target_db.engine


config.set_main_option(
    "sqlalchemy.url", get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
)


def render_item(type_, obj, autogen_context):
    """Write plain SQLAlchemy types into revisions, so they never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def process_revision_directives(context, revision, directives):
    if getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")


def include_name(name, type_, parent_names):
    """Tables Kabar does not model: APScheduler's job store creates and owns its own."""
    return not (type_ == "table" and name in database.UNMANAGED_TABLES)


def configure_args() -> dict:
    args = dict(current_app.extensions["migrate"].configure_args)
    args.setdefault("process_revision_directives", process_revision_directives)
    args.setdefault("render_item", render_item)
    args.setdefault("compare_type", True)
    args.setdefault("include_name", include_name)
    args.setdefault("render_as_batch", True)  # SQLite needs batch mode to alter tables
    return args


def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_db.metadata,
        literal_binds=True,
        **configure_args(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    with get_engine().connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_db.metadata, **configure_args()
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
