"""Stored workflows: save a document as a new version, load a version for the engine,
enable and disable, hook tokens, and the workflows folder.

A document is checked by ``nodes`` (JSON Schema, node params, graph) before it is stored;
``InvalidWorkflow`` becomes a 422 whose ``errors`` are keyed by JSON path. Saving the same
document again changes nothing; a different one becomes the next version, and runs that
started on an older one finish on it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from nodes import InvalidWorkflow
from nodes import Workflow as WorkflowDoc
from server import inputs
from server.errors import Conflict, NotFound, ValidationFailed
from server.models import Workflow, WorkflowRun, WorkflowVersion, db, memo

log = logging.getLogger(__name__)

TOKEN_PREFIX = "kwh_"
BUILTIN = "builtin"  # a workflow Kabar itself defines (``watches.py``): never replaced


class WorkflowTooLarge(ValidationFailed):
    status = 413
    code = "workflow_too_large"


def check(doc: Any) -> WorkflowDoc:
    """The document as a workflow, or 422 ``workflow_invalid`` with every problem (413
    ``workflow_too_large`` past the size limits, before any validation work)."""
    if not isinstance(doc, dict):
        raise ValidationFailed(
            "A workflow is a JSON object.",
            code="workflow_invalid",
            errors={"$": ["Expected a JSON object."]},
        )
    _check_size(doc)
    try:
        return WorkflowDoc.from_dict(doc)
    except InvalidWorkflow as exc:
        errors: dict[str, list[str]] = {}
        for problem in exc.problems:
            errors.setdefault(problem.path, []).append(problem.message)
        count = len(exc.problems)
        raise ValidationFailed(
            f"The workflow is not valid: {count} problem{'' if count == 1 else 's'}, each "
            "listed in errors under its JSON path.",
            code="workflow_invalid",
            errors=errors,
        ) from None


def _check_size(doc: dict[str, Any]) -> None:
    settings = current_app.config["KABAR"]
    nodes = doc.get("nodes")
    most = settings["WORKFLOW_MAX_NODES"]
    if isinstance(nodes, dict) and len(nodes) > most:
        raise WorkflowTooLarge(
            f"The workflow has {len(nodes)} nodes; at most {most} are allowed "
            "(KABAR_WORKFLOW_MAX_NODES). Split it into workflows that trigger each other.",
            errors={"$.nodes": [f"At most {most} nodes."]},
        )
    size = len(json.dumps(doc, separators=(",", ":")).encode())
    most = settings["WORKFLOW_MAX_BYTES"]
    if size > most:
        raise WorkflowTooLarge(
            f"The workflow is {size} bytes of JSON; at most {most} are allowed "
            "(KABAR_WORKFLOW_MAX_BYTES).",
            errors={"$": [f"At most {most} bytes."]},
        )


def parse_json(text: str | bytes, *, where: str = "the body") -> Any:
    try:
        return inputs.load_json(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        position = (
            f" at line {exc.lineno}, column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise ValidationFailed(
            f"{where} is not valid JSON{position}.",
            code="workflow_invalid",
            errors={"$": [str(exc)]},
        ) from None


def save(
    doc: dict[str, Any],
    *,
    owner_id: int | None,
    source: str = "api",
    path: str | None = None,
    by: str | None = None,
    note: str | None = None,
) -> tuple[Workflow, bool, str | None]:
    """Store ``doc`` (checked) as the named workflow's next version (``note``: why, when
    it is not an upload); the caller commits.

    Returns (workflow, changed, hook_token). ``hook_token`` is given only when a hook
    token was made now (a new workflow with a hook trigger): it is shown once.
    """
    checked = check(doc)
    digest = _digest(doc)
    row = by_name(checked.name, owner_id=owner_id)  # names are per owner: no one else's
    builtin = by_name(checked.name, owner_id=None) if source != BUILTIN else None
    if builtin is not None and builtin.source == BUILTIN:
        raise Conflict(
            f"{checked.name!r} is built into Kabar and cannot be replaced; choose another name.",
            code="workflow_name_taken",
        )
    if row is None:
        row = Workflow(name=checked.name, owner_id=owner_id, version=0, source=source)
        db.session.add(row)
        db.session.flush()
    elif _current_digest(row) == digest:
        return row, False, None
    row.version += 1
    row.description = checked.description
    row.source, row.path = source, path
    row.triggers = checked.triggers
    row.event_types = sorted(
        {
            kind
            for trigger in checked.triggers
            if trigger.get("type") == "event"
            for kind in trigger["types"]
        }
    )
    db.session.add(
        WorkflowVersion(
            workflow_id=row.id,
            version=row.version,
            doc=doc,
            digest=digest,
            created_by=by,
            note=note,
        )
    )
    token = None
    if has_hook(row) and row.hook_token_hash is None:
        token = rotate_token(row)
    return row, True, token


def has_hook(row: Workflow) -> bool:
    return any(trigger.get("type") == "hook" for trigger in row.triggers)


def rotate_token(row: Workflow) -> str:
    """A new hook token for ``row`` (the old one stops working); shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row.hook_token_hash = _hash(token)
    row.hook_token_prefix = token[:12]
    return token


def token_matches(row: Workflow, token: str | None) -> bool:
    """Constant-time check of a hook token."""
    if not token or row.hook_token_hash is None:
        return False
    return hmac.compare_digest(_hash(token), row.hook_token_hash)


def doc_of(row: Workflow, version: int | None = None) -> dict[str, Any]:
    stored = db.session.get(WorkflowVersion, (row.id, version or row.version))
    if stored is None:
        raise NotFound(
            f"Workflow {row.name!r} has no version {version}.", code="workflow_version_not_found"
        )
    return stored.doc


def load(workflow_id: int, version: int) -> WorkflowDoc:
    """The engine's workflow for a stored version. Checking a document is the costly
    part, so checked ones are kept by content digest (ids may be reused after a delete):
    a run step reads only the digest, and the document when it is new to this process."""
    digest = memo(
        ("workflow version", workflow_id, version),
        lambda: db.session.scalar(
            sa.select(WorkflowVersion.digest).where(
                WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == version
            )
        ),
    )
    if digest is None:
        raise NotFound(
            f"Workflow {workflow_id} has no version {version}.", code="workflow_version_not_found"
        )
    checked = _CHECKED.get((digest, version))
    if checked is None:
        doc = dict(db.session.get(WorkflowVersion, (workflow_id, version)).doc)
        doc["version"] = version  # the stored version is the one runs record
        if len(_CHECKED) >= 512:
            _CHECKED.clear()
        checked = _CHECKED[(digest, version)] = WorkflowDoc.from_dict(doc)
    return checked


_CHECKED: dict[tuple[str, int], WorkflowDoc] = {}


def _owned_by(owner_id: int | None) -> sa.ColumnElement[bool]:
    return Workflow.owner_id.is_(None) if owner_id is None else Workflow.owner_id == owner_id


def by_name(name: str, *, owner_id: int | None = None) -> Workflow | None:
    """The workflow of that owner (None: the global one) with that name."""
    return db.session.scalar(sa.select(Workflow).where(Workflow.name == name, _owned_by(owner_id)))


def named(name: str) -> list[Workflow]:
    """Every owner's workflow with that name (hooks, admins), global one first."""
    return list(
        db.session.scalars(
            sa.select(Workflow)
            .where(Workflow.name == name)
            .order_by(Workflow.owner_id.is_not(None), Workflow.id)
        )
    )


def delete(row: Workflow) -> None:
    """Delete a workflow and its history; refused while runs still wait in it, and for
    a built-in one."""
    if row.source == BUILTIN:
        raise Conflict(
            f"{row.name!r} is built into Kabar and cannot be deleted.", code="workflow_builtin"
        )
    waiting = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(WorkflowRun)
        .where(WorkflowRun.workflow_id == row.id, WorkflowRun.status.in_(("running", "waiting")))
    )
    if waiting:
        raise Conflict(
            f"Workflow {row.name!r} has {waiting} run(s) still waiting; cancel "
            "them first (or disable the workflow to start no new ones).",
            code="workflow_has_open_runs",
        )
    db.session.execute(sa.delete(WorkflowRun).where(WorkflowRun.workflow_id == row.id))
    db.session.delete(row)


# -- the workflows folder ----------------------------------------------------------------


def folder() -> Path | None:
    configured = current_app.config["KABAR"]["WORKFLOWS_DIR"]
    if configured:
        return Path(configured)
    # The shipped workflows: workflows/ in a checkout (server/shipped_workflows links to
    # it), package data in an installed wheel.
    shipped = (Path(__file__).resolve().parents[1] / "shipped_workflows").resolve()
    return shipped if shipped.is_dir() else None


def reload(directory: Path | None = None) -> dict[str, Any]:
    """Read every ``*.json`` under the workflows folder (subfolders too) and store what
    changed as new versions of global workflows. New ones start disabled; enabled state
    is kept. One bad file is reported and does not stop the others. Commits.

    It is one transaction that reads before it writes. On SQLite (WAL) such a transaction
    fails at once with "database is locked" when another connection wrote in between (the
    busy timeout does not apply to it), as the runtime's own threads do while it starts:
    then it is rolled back and read again, a few times."""
    for attempt in range(1, RELOAD_ATTEMPTS + 1):
        try:
            return _reload(directory)
        except sa.exc.OperationalError as exc:
            db.session.rollback()
            if "database is locked" not in str(exc) or attempt == RELOAD_ATTEMPTS:
                raise
            log.info("workflows reload met a concurrent write; reading again")
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


RELOAD_ATTEMPTS = 5


def _reload(directory: Path | None) -> dict[str, Any]:
    directory = directory or folder()
    report: dict[str, Any] = {
        "folder": str(directory) if directory else None,
        "added": [],
        "updated": [],
        "unchanged": [],
        "errors": [],
    }
    if directory is None or not directory.is_dir():
        return report
    for path in sorted(directory.rglob("*.json")):
        relative = str(path.relative_to(directory))
        try:
            doc = parse_json(path.read_bytes(), where=relative)
            existed = isinstance(doc, dict) and by_name(str(doc.get("name"))) is not None
            with db.session.begin_nested():
                row, changed, _token = save(
                    doc, owner_id=None, source="file", path=relative, by="folder"
                )
        except (ValidationFailed, Conflict) as exc:
            report["errors"].append(
                {"file": relative, "message": exc.message, "errors": exc.errors}
            )
            continue
        key = "unchanged" if not changed else "updated" if existed else "added"
        report[key].append({"name": row.name, "version": row.version, "file": relative})
    db.session.commit()
    log.info(
        "workflows reloaded from %s: %d added, %d updated, %d errors",
        directory,
        len(report["added"]),
        len(report["updated"]),
        len(report["errors"]),
    )
    return report


def _digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _current_digest(row: Workflow) -> str | None:
    return db.session.scalar(
        sa.select(WorkflowVersion.digest).where(
            WorkflowVersion.workflow_id == row.id, WorkflowVersion.version == row.version
        )
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
