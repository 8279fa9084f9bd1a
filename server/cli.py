"""The ``kabar`` command."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import FlaskGroup
from flask_migrate.cli import db as db_migrate_group

from server import database
from server.app import create_app
from server.auth import accounts, apikeys
from server.auth.principal import Principal
from server.errors import KabarError
from server.models import ApiKey, User, db

# Commands that may make a new instance (the others need one that `kabar init` set up).
CREATING_COMMANDS = {"init", "run", "demo", "runtime", "db"}


def _app_factory():
    from server import config

    ctx = click.get_current_context(silent=True)
    while ctx is not None and ctx.parent is not None and ctx.parent.parent is not None:
        ctx = ctx.parent
    command = ctx.info_name if ctx is not None and ctx.parent is not None else None
    if command in CREATING_COMMANDS:
        return create_app()
    path = config.instance_path(config.load())
    if not config.is_instance(path):
        raise click.ClickException(
            f"There is no Kabar instance at {path}. Create it with `kabar init` (it makes "
            "the folder and the database), or point KABAR_INSTANCE_PATH at an existing "
            "one. Without the setting Kabar uses ./instance when the current folder holds "
            "one, else (a checkout) the checkout's instance folder, else /var/lib/kabar "
            "when it exists, else ~/.local/share/kabar."
        )
    app = create_app()
    with app.app_context():
        if database.current_revision() is None:
            raise click.ClickException(
                f"The database of the instance at {path} is not set up yet; run `kabar init` first."
            )
    return app


class KabarGroup(FlaskGroup):
    """Flask's group for its app loading (``with_appcontext``), without what Flask adds
    for its own `flask` command: the --app/--env-file/--debug options, the commands of
    installed Flask extensions (limiter, openapi, ...) and the app's own ``app.cli``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = [p for p in self.params if p.name not in {"env_file", "app", "debug"}]
        self.context_settings.pop("auto_envvar_prefix", None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return click.Group.parse_args(self, ctx, args)


@click.group(
    cls=KabarGroup,
    create_app=_app_factory,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
)
def cli() -> None:
    """Kabar: a self-hosted WhatsApp gateway.

    Settings come from KABAR_* environment variables (docs/configuration.md).
    """


def main() -> None:
    try:
        cli.main(prog_name="kabar")
    except KabarError as exc:  # a service refused: say why, no traceback
        raise SystemExit(f"Error: {exc.message}") from None


def _exit(code: int) -> None:
    """End the command with ``code`` (click's way, so tests see it too)."""
    click.get_current_context().exit(code)


def _fail_on_kabar_error(func):
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KabarError as exc:
            detail = "".join(
                f"\n  {k}: {'; '.join(map(str, v))}" for k, v in (exc.errors or {}).items()
            )
            raise click.ClickException(exc.message + detail) from None

    return wrapper


# --- database and first admin -------------------------------------------------------


@cli.command("init")
@_fail_on_kabar_error
def init_command() -> None:
    """Migrate the database and create the first admin (once)."""
    database.upgrade()
    click.echo(f"Database at revision {database.current_revision()}.")
    settings = current_app.config["KABAR"]
    kabar = _command_name()
    if accounts.count_active_admins():
        click.echo(
            "An admin exists already; nothing else to do. Lost its password? "
            f"{kabar} users set-password USERNAME"
        )
        return
    password = settings["ADMIN_PASSWORD"]
    generated = not password
    if generated:
        password = secrets.token_urlsafe(12)
    user = accounts.create_user(
        username=settings["ADMIN_USERNAME"],
        password=password,
        group="admin",
        display_name="Administrator",
    )
    click.echo(f"Created the admin user {user.username!r}.")
    shown = (
        f"{password}   (shown once: write it down)"
        if generated
        else "the one in KABAR_ADMIN_PASSWORD"
    )
    click.echo(
        framed(
            [
                f"Kabar is set up in {current_app.instance_path}.",
                f"Serve it with `{kabar} run`, then:",
                f"  dashboard:       http://{settings['HOST']}:{settings['PORT']}/"
                "  (API docs at /docs)",
                f"  admin username:  {user.username}",
                f"  admin password:  {shown}",
                f"  an API key:      {kabar} apikey create --user {user.username}"
                ' --name "my script"',
                f"  lost password:   {kabar} users set-password {user.username}",
            ]
        )
    )


def framed(lines: list[str]) -> str:
    """``lines`` in a box, so that they stand out at the end of a long output."""
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join(["", rule, *(f"| {line.ljust(width)} |" for line in lines), rule, ""])


def _command_name() -> str:
    """How the person ran `kabar` (``.venv/bin/kabar`` from a checkout), to print commands
    they can paste."""
    argv0 = Path(sys.argv[0])
    if argv0.name != "kabar":
        return "kabar"
    found = shutil.which("kabar")
    if found and Path(found).resolve() == argv0.resolve():
        return "kabar"
    return str(argv0)


# Flask-Migrate's `kabar db ...` (migrate, upgrade, history), on server/migrations.
cli.add_command(db_migrate_group, "db")


# --- serving ------------------------------------------------------------------------


@cli.command("run")
@click.option("--host", default=None, help="Address to listen on (KABAR_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (KABAR_PORT).")
@click.option("--workers", default=None, type=int, help="Web workers (KABAR_WEB_WORKERS).")
@_fail_on_kabar_error
def run_command(host: str | None, port: int | None, workers: int | None) -> None:
    """Migrate, then serve the web app (gunicorn) and supervise the runtime process."""
    host, port = _claim(host, port)
    database.upgrade()
    _serve(host, port, workers)


def _claim(host: str | None, port: int | None) -> tuple[str, int]:
    """The address to serve on, once this process holds the instance and the port is
    free (before anything is changed)."""
    from server import instance

    settings = current_app.config["KABAR"]
    host, port = host or settings["HOST"], port or settings["PORT"]
    instance.claim(Path(current_app.instance_path), host=host, port=port)
    return host, port


def _serve(host: str, port: int, workers: int | None) -> None:
    """gunicorn for the web app, and the runtime process, under the supervisor."""
    from server.runtime.supervisor import supervise

    settings = current_app.config["KABAR"]
    workers = workers or settings["WEB_WORKERS"]
    env = dict(os.environ)
    # Metrics from every gunicorn worker, collected in one folder cleared at each start
    # (the instance is ours: _claim refused a second kabar run on it).
    metrics_dir = Path(current_app.instance_path) / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env["KABAR_INSTANCE_PATH"] = current_app.instance_path
    env["KABAR_DATABASE_URL"] = current_app.config["SQLALCHEMY_DATABASE_URI"]
    web = [
        sys.executable,
        "-m",
        "gunicorn",
        "server:create_app()",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(settings["WEB_THREADS"]),
        "--worker-class",
        "gthread",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "10",
        "--control-socket",
        str(Path(current_app.instance_path) / "gunicorn.ctl"),
    ]
    click.echo(f"Kabar serving on http://{host}:{port} (API docs at /docs)")
    raise SystemExit(supervise(current_app._get_current_object(), web, env))


@cli.command("demo", with_appcontext=False)
@click.option("--host", default=None, help="Address to listen on (KABAR_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (KABAR_PORT).")
@click.option(
    "--instance",
    "instance_path",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The demo's instance folder. Default: its own, beside the usual one "
    "(INSTANCE-demo, with its own SQLite database). Naming your real "
    "instance puts the demo there: its helpdesk workflows then answer every "
    "session's contacts.",
)
@click.pass_context
@_fail_on_kabar_error
def demo_command(
    ctx: click.Context, host: str | None, port: int | None, instance_path: Path | None
) -> None:
    """Serve a sandbox helpdesk ready to talk to, on its own instance, and say how."""
    from server import config, demo

    values = config.load()
    usual = config.instance_path(values)
    path = (instance_path or demo.instance_beside(usual)).expanduser().resolve()
    overrides = {"INSTANCE_PATH": str(path)}
    if path != usual:
        overrides["DATABASE_URL"] = None  # its own SQLite database, never the usual one
    app = create_app(overrides)
    with app.app_context():
        host, port = _claim(host, port)
        ctx.invoke(init_command)
        prepared = demo.prepare()
        demo.pair_when_ready(app, prepared.session_id)
        click.echo(demo.instructions(prepared, f"http://{host}:{port}", instance=path))
        _serve(host, port, None)


@cli.command("runtime")
@click.option(
    "--drain",
    is_flag=True,
    help="Instead of running: make the runtime host(s) on this machine (or --host) "
    "give their sessions to the other hosts, for an upgrade; stop it after.",
)
@click.option("--host", "host_id", default=None, help="The host to drain (see --list).")
@click.option("--list", "list_hosts", is_flag=True, help="List the runtime hosts and exit.")
def runtime_command(drain: bool, host_id: str | None, list_hosts: bool) -> None:
    """Run a runtime host (it holds WhatsApp sessions; several may share one PostgreSQL)."""
    if drain or list_hosts:
        from server.runtime import leases, wakeup

        hosts = leases.hosts()
        if drain:
            here = [
                h
                for h in hosts
                if (h.id == host_id if host_id else h.hostname == socket.gethostname() and h.alive)
            ]
            if not here:
                raise click.ClickException(
                    f"No runtime host {host_id!r}."
                    if host_id
                    else "No live runtime host on this machine; `kabar runtime --list` shows them."
                )
            for host in here:
                leases.drain(host.id)
                click.echo(
                    f"draining {host.id} ({host.sessions} session(s)); stop it once "
                    "`kabar runtime --list` shows it holds none"
                )
            wakeup.notify()
            return
        for h in hosts:
            flags = ", ".join(
                f
                for f, on in (("leader", h.leader), ("draining", h.draining), ("down", not h.alive))
                if on
            )
            click.echo(
                f"{h.id}  {h.sessions}/{h.capacity} sessions" + (f"  ({flags})" if flags else "")
            )
        return
    from server.runtime.process import main as runtime_main

    database.upgrade()
    runtime_main(current_app._get_current_object())


# --- users --------------------------------------------------------------------------


@cli.group("users")
def users_group() -> None:
    """Manage users."""


def _user(username: str) -> User:
    user = accounts.find_user(username)
    if user is None:
        raise click.ClickException(f"No user named {username!r}.")
    return user


@users_group.command("create")
@click.argument("username")
@click.option("--group", default="operator", show_default=True)
@click.option("--name", "display_name", default="")
@click.option("--email", default=None)
@click.option("--phone", default=None)
@click.password_option(help="Prompted for if not given.")
@_fail_on_kabar_error
def users_create(username, group, display_name, email, phone, password) -> None:
    """Create a user."""
    user = accounts.create_user(
        username=username,
        password=password,
        group=group,
        display_name=display_name,
        email=email,
        phone=phone,
    )
    click.echo(f"Created user {user.username!r} (id {user.id}) in group {group!r}.")


@users_group.command("set-password")
@click.argument("username")
@click.option(
    "--password",
    default=None,
    help="The new password (prompted for if not given, unless --generate).",
)
@click.option("--generate", is_flag=True, help="Make a random password and print it.")
@_fail_on_kabar_error
def users_set_password(username: str, password: str | None, generate: bool) -> None:
    """Set a user's password (a lost admin password too); their logins end."""
    user = _user(username)
    if password and generate:
        raise click.UsageError("Give --password or --generate, not both.")
    if generate:
        password = secrets.token_urlsafe(12)
    elif not password:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    accounts.update_user(user, password=password)
    lines = [f"The password of {user.username!r} is set; their logins ended."]
    if generate:
        lines += [f"  username:  {user.username}", f"  password:  {password}   (shown once)"]
    click.echo(framed(lines))


@users_group.command("list")
def users_list() -> None:
    """List users."""
    for user in db.session.scalars(sa.select(User).order_by(User.id)):
        state = "blocked" if user.is_blocked else "active"
        click.echo(f"{user.id:>5}  {user.username:<24} {user.group.name:<10} {state}")


@users_group.command("block")
@click.argument("username")
@click.option("--reason", default="")
@_fail_on_kabar_error
def users_block(username: str, reason: str) -> None:
    """Block a user: logins and API keys stop working at once."""
    user = _user(username)
    accounts.block_user(user, reason=reason)
    click.echo(f"Blocked {user.username!r}.")


@users_group.command("unblock")
@click.argument("username")
def users_unblock(username: str) -> None:
    """Unblock a user."""
    accounts.unblock_user(_user(username))
    click.echo(f"Unblocked {username!r}.")


# --- API keys -----------------------------------------------------------------------


@cli.group("apikey")
def apikey_group() -> None:
    """Manage API keys."""


@apikey_group.command("create")
@click.option("--user", "username", required=True, help="The user the key acts as.")
@click.option("--name", required=True, help="What the key is for.")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    help="Repeat for each; default: every permission the user holds.",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="Print only the key, for KEY=$(kabar apikey create ... -q)."
)
@click.option(
    "--session",
    "session_id",
    default=None,
    help="Bind the key to this session (a fonnte device token, docs/fonnte.md).",
)
@_fail_on_kabar_error
def apikey_create(
    username: str, name: str, permissions: tuple[str, ...], quiet: bool, session_id: str | None
) -> None:
    """Create an API key and print it once."""
    user = _user(username)
    if user.is_blocked:
        raise click.ClickException(f"{username!r} is blocked.")
    row, key = apikeys.create(
        Principal.for_user(user),
        name=name,
        permissions=list(permissions) or None,
        session_id=session_id,
    )
    if quiet:
        click.echo(key)
        return
    click.echo(
        f"API key {row.id} for {user.username!r}: {', '.join(row.permissions)}"
        + (f" (session {row.session_id} only)" if row.session_id else "")
    )
    click.echo(f"Key (shown once): {key}")


@apikey_group.command("list")
@click.option("--user", "username", default=None)
def apikey_list(username: str | None) -> None:
    """List API keys (never the keys themselves)."""
    query = sa.select(ApiKey).order_by(ApiKey.id)
    if username:
        query = query.where(ApiKey.owner_id == _user(username).id)
    for key in db.session.scalars(query):
        state = "revoked" if key.revoked_at else "active"
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        click.echo(
            f"{key.id:>5}  kabar_{key.prefix}_…  {key.owner.username:<16} "
            f"{key.name:<24} {state:<8} last used {used}"
        )


@apikey_group.command("revoke")
@click.argument("key_id", type=int)
def apikey_revoke(key_id: int) -> None:
    """Revoke an API key by id."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise click.ClickException(f"No API key with id {key_id}.")
    apikeys.revoke(key)
    click.echo(f"Revoked API key {key_id}.")


# --- sandbox ------------------------------------------------------------------------


def _session(session_id: str):
    from server.models import WaSession

    session = db.session.get(WaSession, session_id)
    if session is None or session.deleted_at is not None:
        raise click.ClickException(f"No session with id {session_id!r}.")
    return session


@cli.group("sandbox")
def sandbox_group() -> None:
    """Play the phone and the contacts of a sandbox session (never reaches WhatsApp)."""


@sandbox_group.command("scan")
@click.option("--session", "session_id", required=True)
@click.option(
    "--phone",
    default="6281100000000",
    show_default=True,
    help="The number the sandbox phone pairs as.",
)
@click.option("--name", "push_name", default="")
@_fail_on_kabar_error
def sandbox_scan(session_id: str, phone: str, push_name: str) -> None:
    """Scan the session's QR code with the sandbox phone."""
    from server import sandbox_controls

    identity = sandbox_controls.scan(_session(session_id), phone=phone, push_name=push_name)
    click.echo(f"Paired as {identity['jid']} ({identity['push_name']}).")


@sandbox_group.command("say")
@click.option("--session", "session_id", required=True)
@click.option("--from", "sender", required=True, help="The contact's number, e.g. 0812...")
@click.option("--name", default="", help="The contact's display name.")
@click.option("--group", default=None, help="A group JID (120363…@g.us) to speak in.")
@click.argument("text")
@_fail_on_kabar_error
def sandbox_say(session_id: str, sender: str, name: str, group: str | None, text: str) -> None:
    """A virtual contact sends TEXT to the session (in a private chat, or in --group)."""
    from server import sandbox_controls

    status, message_id = sandbox_controls.say(
        _session(session_id), sender=sender, name=name, text=text, group=group
    )
    if message_id:
        click.echo(f"Delivered as message {message_id}.")
    else:
        click.echo("Queued: the runtime is not running; it is delivered when it starts.")


@sandbox_group.command("inbox")
@click.option("--session", "session_id", required=True)
@click.option("--to", default=None, help="Only what this contact received.")
@click.option("--follow", is_flag=True, help="Keep printing what arrives (Ctrl+C stops).")
@_fail_on_kabar_error
def sandbox_inbox(session_id: str, to: str | None, follow: bool) -> None:
    """What the session sent to its virtual contacts, oldest first."""
    import time

    from server import sandbox_controls
    from server.models import SandboxDelivery

    query, last = sandbox_controls.received(_session(session_id), to=to), 0
    while True:
        rows = db.session.scalars(
            query.where(SandboxDelivery.id > last).order_by(SandboxDelivery.id)
        ).all()
        for row in rows:
            text = row.content.get("text") or row.content.get("caption") or f"[{row.kind}]"
            click.echo(f"{row.received_at:%H:%M:%S} -> {row.to_jid.split('@')[0]}: {text}")
            last = row.id
        db.session.rollback()
        if not follow:
            return
        time.sleep(1)


@sandbox_group.command("participants")
@click.option("--session", "session_id", required=True)
@click.option("--from", "sender", required=True, help="The contact doing it, a group admin.")
@click.option("--name", default="", help="The contact's display name.")
@click.option("--group", required=True, help="The group's JID (120363…@g.us).")
@click.option("--action", required=True, type=click.Choice(["add", "remove", "promote", "demote"]))
@click.argument("people", nargs=-1, required=True)
@_fail_on_kabar_error
def sandbox_participants(
    session_id: str, sender: str, name: str, group: str, action: str, people: tuple[str, ...]
) -> None:
    """A virtual contact adds, removes, promotes or demotes PEOPLE in a group (the
    session's own number adds or removes the session)."""
    from server import sandbox_controls

    for result in sandbox_controls.contact_participants(
        _session(session_id),
        sender=sender,
        name=name,
        group=group,
        action=action,
        participants=list(people),
    ):
        click.echo(f"{result['jid']}: {'ok' if result['ok'] else result['error']}")


@sandbox_group.command("group-update")
@click.option("--session", "session_id", required=True)
@click.option("--from", "sender", required=True, help="The contact doing it, a member.")
@click.option("--name", default="", help="The contact's display name.")
@click.option("--group", required=True, help="The group's JID (120363…@g.us).")
@click.option("--set-name", default=None, help="The group's new name.")
@click.option("--set-topic", default=None, help="The group's new description.")
@click.option("--announce/--no-announce", default=None, help="Only admins may send.")
@click.option("--locked/--no-locked", default=None, help="Only admins may edit the info.")
@_fail_on_kabar_error
def sandbox_group_update(
    session_id: str,
    sender: str,
    name: str,
    group: str,
    set_name: str | None,
    set_topic: str | None,
    announce: bool | None,
    locked: bool | None,
) -> None:
    """A virtual contact changes a group's name, description or settings."""
    from server import sandbox_controls

    changed = sandbox_controls.contact_update_group(
        _session(session_id),
        sender=sender,
        name=name,
        group=group,
        changes={"name": set_name, "topic": set_topic, "announce": announce, "locked": locked},
    )
    click.echo(f"Changed: {', '.join(changed)}." if changed else "Nothing changed.")


@sandbox_group.command("vote")
@click.option("--session", "session_id", required=True)
@click.option("--from", "sender", required=True, help="The voter's number.")
@click.option("--name", default="", help="The voter's display name.")
@click.option("--poll", "poll_id", required=True, help="The poll's message id (id or wa_id).")
@click.argument("options", nargs=-1)
@_fail_on_kabar_error
def sandbox_vote(
    session_id: str, sender: str, name: str, poll_id: str, options: tuple[str, ...]
) -> None:
    """A virtual contact votes for OPTIONS in a poll the session sent (none: the vote is
    taken back)."""
    from server import sandbox_controls

    voted = sandbox_controls.vote(
        _session(session_id), sender=sender, name=name, poll_id=poll_id, options=list(options)
    )
    picked = ", ".join(voted["options"])
    click.echo(f"Voted for {picked}." if picked else "Vote taken back.")


@cli.group("sessions")
def sessions_group() -> None:
    """See WhatsApp sessions."""


@sessions_group.command("list")
def sessions_list() -> None:
    """Every session with its status."""
    from server.models import WaSession

    for session in db.session.scalars(
        sa.select(WaSession).where(WaSession.deleted_at.is_(None)).order_by(WaSession.created_at)
    ):
        click.echo(
            f"{session.id}  {session.transport:<8} {session.status:<13} "
            f"{session.phone or '-':<15} {session.label}"
        )


# --- nodes and workflows ------------------------------------------------------------
# The catalogue and file checks are nodes/cli.py's (python -m nodes prints the
# same). The rest acts as the machine's operator: every workflow, global or owned.


@cli.group("nodes")
def nodes_group() -> None:
    """The workflow node catalogue, documented from each node's own schema."""


@nodes_group.command("list", with_appcontext=False)
def nodes_list() -> None:
    """Every node type with its version and what it does."""
    from nodes import cli as nodes_cli

    _exit(nodes_cli.list_nodes(click.echo))


@nodes_group.command("show", with_appcontext=False)
@click.argument("node_type", metavar="TYPE")
@click.option("--version", type=int, default=None, help="A version (default: the latest).")
def nodes_show(node_type: str, version: int | None) -> None:
    """A node's documentation, outputs and parameters (JSON Schema)."""
    from nodes import cli as nodes_cli

    _exit(
        nodes_cli.show_node(node_type, version, click.echo, lambda text: click.echo(text, err=True))
    )


@cli.group("workflow")
def workflow_group() -> None:
    """Check, list, load, enable and run workflows."""


@workflow_group.command("validate", with_appcontext=False)
@click.argument("files", nargs=-1, required=True)
def workflow_validate(files: tuple[str, ...]) -> None:
    """Check workflow files: each problem with its JSON path and what to do. Exits 1
    when any file is not valid."""
    from nodes import cli as nodes_cli

    _exit(nodes_cli.validate_files(files, click.echo))


def _workflow(name: str):
    from server.workflows import store

    rows = store.named(name)  # the global one first; names are unique per owner
    if len(rows) > 1 and rows[0].owner_id is not None:
        raise click.ClickException(
            f"{len(rows)} users have a workflow named {name!r}; "
            "manage theirs over the API by its id."
        )
    if not rows:
        raise click.ClickException(f"No workflow named {name!r}; `kabar workflow list` shows them.")
    return rows[0]


@workflow_group.command("list")
def workflow_list() -> None:
    """Every workflow: version, enabled, where it came from, its owner and triggers."""
    from server.models import Workflow

    rows = db.session.execute(
        sa.select(Workflow, User.username)
        .outerjoin(User, User.id == Workflow.owner_id)
        .order_by(Workflow.name)
    ).all()
    if not rows:
        click.echo(
            "No workflows. Put some in the workflows folder and run "
            "`kabar workflow reload`, or upload them (POST /api/v1/workflows)."
        )
    for row, owner in rows:
        state = "enabled" if row.enabled else "disabled"
        triggers = ", ".join(str(t.get("type")) for t in row.triggers) or "-"
        click.echo(
            f"{row.name:<24} v{row.version:<4} {state:<9} {row.source:<5} "
            f"{owner or 'global':<16} {triggers}"
        )


@workflow_group.command("reload")
@_fail_on_kabar_error
def workflow_reload() -> None:
    """Read the workflows folder (KABAR_WORKFLOWS_DIR) again: changed files become new
    versions, new ones start disabled. Exits 1 when a file is not valid."""
    from server.workflows import store

    report = store.reload()
    if not report["folder"]:
        raise click.ClickException("There is no workflows folder; set KABAR_WORKFLOWS_DIR.")
    click.echo(f"Folder: {report['folder']}")
    for key in ("added", "updated"):
        for item in report[key]:
            click.echo(f"{key}: {item['name']} v{item['version']} ({item['file']})")
    click.echo(f"unchanged: {len(report['unchanged'])}")
    for error in report["errors"]:
        click.echo(f"error: {error['file']}: {error['message']}")
        for path, messages in (error["errors"] or {}).items():
            for message in messages:
                click.echo(f"  {path}: {message}")
    if report["added"]:
        click.echo("New workflows start disabled: kabar workflow enable NAME.")
    _exit(1 if report["errors"] else 0)


@workflow_group.command("enable")
@click.argument("name")
def workflow_enable(name: str) -> None:
    """Start listening to the workflow's triggers."""
    from server.workflows import operations

    row = operations.set_enabled(_workflow(name), True)
    click.echo(f"Enabled {row.name!r} (version {row.version}).")


@workflow_group.command("disable")
@click.argument("name")
def workflow_disable(name: str) -> None:
    """Stop starting new runs (runs under way go on)."""
    from server.workflows import operations

    row = operations.set_enabled(_workflow(name), False)
    click.echo(f"Disabled {row.name!r}; runs under way go on.")


@workflow_group.command("run")
@click.argument("name")
@click.option(
    "--input",
    "input_json",
    default="{}",
    show_default=True,
    help="trigger.input, as a JSON object.",
)
@click.option("--session", default=None, help="The run's session (id or label).")
@click.option(
    "--chat",
    default=None,
    help="The run's chat (a phone or JID): where send and wait_for_reply go by default.",
)
@_fail_on_kabar_error
def workflow_run(name: str, input_json: str, session: str | None, chat: str | None) -> None:
    """Start a run by hand and take it as far as it goes (the runtime resumes a run that
    waits). Prints its id, status and result; exits 1 when it failed."""
    from server.workflows import operations

    row = _workflow(name)
    try:
        data = json.loads(input_json)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--input") from None
    if not isinstance(data, dict):
        raise click.BadParameter("give a JSON object, such as '{\"n\": 1}'", param_hint="--input")
    run, _ctx = operations.start_manual(row, input=data, session=session, chat=chat, by="cli")
    click.echo(f"Run {run.id}: {run.status}")
    if run.status == "waiting":
        wait = run.state.get("wait") or {}
        what = f"a reply from {wait.get('chat')}" if wait.get("kind") == "reply" else "the time"
        click.echo(
            f"It waits at {wait.get('node')} for {what} until {wait.get('until')}; "
            "the runtime resumes it."
        )
    if run.state.get("result") is not None:
        click.echo(f"result: {json.dumps(run.state['result'], ensure_ascii=False)}")
    if run.error:
        click.echo(f"error: {run.error}")
    _exit(1 if run.status == "failed" else 0)


if __name__ == "__main__":
    main()
