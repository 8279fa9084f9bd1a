"""A workflow's versions: list them, compare two, restore one.

A version is never changed or removed while its workflow lives (runs finish on the
version they started with). Restoring one stores its document again as the next
version, by the restoring user, with a note saying where it came from: the history keeps
what happened, as it does for any upload.
"""

from __future__ import annotations

import difflib
import json
import logging
from typing import Any

import sqlalchemy as sa

from server.auth import current_principal
from server.errors import Conflict
from server.models import Workflow, WorkflowVersion, db
from server.workflows import store

log = logging.getLogger(__name__)

# What a node is made of, as the graph diff names it; other keys (such as where the
# editor placed the node) are reported by name too.
NODE_PARTS = ("type", "version", "params", "next", "retry", "description")
LAYOUT = "positions"  # where the studio draws each node: no part of the meaning


def listing(row: Workflow) -> list[dict[str, Any]]:
    """Every version, newest first, with who made it and why."""
    return [
        {
            "version": v.version,
            "created_at": v.created_at,
            "created_by": v.created_by,
            "note": v.note,
            "current": v.version == row.version,
            "nodes": len((v.doc or {}).get("nodes") or {}),
        }
        for v in db.session.scalars(
            sa.select(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == row.id)
            .order_by(WorkflowVersion.version.desc())
        )
    ]


def compare(row: Workflow, old: int, new: int) -> dict[str, Any]:
    """How version ``new`` differs from ``old``: the graph (nodes and edges added,
    removed, changed; the trigger and start) and the JSON, line by line."""
    before, after = store.doc_of(row, old), store.doc_of(row, new)
    return {
        "old": old,
        "new": new,
        **graph_diff(before, after),
        "json": json_diff(before, after, f"version {old}", f"version {new}"),
    }


def graph_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    old_nodes, new_nodes = before.get("nodes") or {}, after.get("nodes") or {}
    changed = []
    for node_id in sorted(set(old_nodes) & set(new_nodes)):
        a, b = old_nodes[node_id], new_nodes[node_id]
        parts = sorted(
            {key for key in set(a) | set(b) if a.get(key) != b.get(key)},
            key=lambda key: (key not in NODE_PARTS, key),
        )
        if parts:
            changed.append({"id": node_id, "parts": parts})
    old_edges, new_edges = _edges(old_nodes), _edges(new_nodes)
    top = sorted(
        key
        for key in set(before) | set(after)
        if key not in ("nodes", LAYOUT) and before.get(key) != after.get(key)
    )
    return {
        "nodes": {
            "added": sorted(set(new_nodes) - set(old_nodes)),
            "removed": sorted(set(old_nodes) - set(new_nodes)),
            "changed": changed,
        },
        "edges": {"added": sorted(new_edges - old_edges), "removed": sorted(old_edges - new_edges)},
        "top": top,
        "moved": before.get(LAYOUT) != after.get(LAYOUT),
        "same": before == after,
    }


def _edges(nodes: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(from node, output, to node) for every connection."""
    return {
        (node_id, str(output), str(target))
        for node_id, node in nodes.items()
        if isinstance(node, dict)
        for output, target in (node.get("next") or {}).items()
        if target
    }


def json_diff(
    before: dict[str, Any], after: dict[str, Any], old_name: str, new_name: str
) -> list[str]:
    """A unified diff of the two documents as indented JSON (keys sorted, so a key that
    only moved is no difference)."""

    def lines(doc: dict[str, Any]) -> list[str]:
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return list(
        difflib.unified_diff(lines(before), lines(after), old_name, new_name, lineterm="", n=3)
    )


def restore(row: Workflow, version: int) -> Workflow:
    """Store version ``version``'s document as the next version (the caller's, noted
    "restored from version N"). 409 ``version_is_current`` when it is the current
    document already. Commits."""
    doc = store.doc_of(row, version)
    user = current_principal().user.username
    saved, changed, _token = store.save(
        doc,
        owner_id=row.owner_id,
        source=row.source,
        path=row.path,
        by=user,
        note=f"restored from version {version}",
    )
    if not changed:
        db.session.rollback()
        raise Conflict(
            f"Version {version} is what {row.name!r} is now (version "
            f"{row.version}); there is nothing to restore.",
            code="version_is_current",
        )
    db.session.commit()
    log.info(
        "workflow %s: version %d restored as version %d by %s",
        row.name,
        version,
        saved.version,
        user,
    )
    return saved
