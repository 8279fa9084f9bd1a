"""Which node types exist: the built-ins plus third-party nodes from the ``kabar.nodes``
entry-point group, keyed by ``(type, version)``.

A package adds nodes in its metadata; each entry point loads a ``Node`` subclass or a
module with a ``NODES`` list::

    [options.entry_points]
    kabar.nodes =
        crm = kabar_crm.nodes

A plugin that fails to load is skipped and reported (``Registry.failures``, and in the
error for an unknown type), so one broken package does not stop every workflow.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import logging
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import marshmallow as ma

from nodes.base import ERROR, Node
from nodes.errors import NodesError, UnknownNode

GROUP = "kabar.nodes"
log = logging.getLogger(__name__)


class Registry:
    """Node classes by ``(type, version)``; the latest version is the default."""

    def __init__(self, nodes: Iterable[type[Node]] = (), *, entry_points: bool = True) -> None:
        self._nodes: dict[tuple[str, int], type[Node]] = {}
        self._plugins_pending = entry_points
        self.failures: list[str] = []
        self.cache: dict[str, Any] = {}
        """Derived data (the JSON Schema, its validator), dropped when a node is added."""
        for node in nodes:
            self.register(node)

    def register(self, node: type[Node], *, source: str = "") -> type[Node]:
        """Add a node class (usable as a class decorator)."""
        _check(node, source)
        key = (node.type, node.version)
        if key in self._nodes and self._nodes[key] is not node:
            other = self._nodes[key]
            raise NodesError(
                f"node {node.type!r} version {node.version} is defined twice: "
                f"{_where(other)} and {_where(node)}. Give the newer one "
                f"version = {node.version + 1}, or uninstall one package"
            )
        self._nodes[key] = node
        self.cache.clear()
        return node

    def get(self, type: str, version: int | None = None) -> type[Node]:
        """The class for ``type`` at ``version`` (default: the latest)."""
        self._load_plugins()
        versions = self.versions(type)
        if not versions:
            raise UnknownNode(self.explain_unknown(type))
        if version is None:
            return self._nodes[(type, versions[-1])]
        if version not in versions:
            raise UnknownNode(
                f"node {type!r} has no version {version}; installed versions: "
                f'{", ".join(map(str, versions))}. Remove "version" to use '
                "the latest, or install the package that provides it"
            )
        return self._nodes[(type, version)]

    def versions(self, type: str) -> list[int]:
        self._load_plugins()
        return sorted(v for t, v in self._nodes if t == type)

    def types(self) -> list[str]:
        self._load_plugins()
        return sorted({t for t, _ in self._nodes})

    def all(self) -> list[type[Node]]:
        """Every registered class, every version, by type then version."""
        self._load_plugins()
        return [self._nodes[key] for key in sorted(self._nodes)]

    def explain_unknown(self, type: str) -> str:
        """Why ``type`` is unknown, with the near miss and the known types."""
        known = self.types()
        close = difflib.get_close_matches(type, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        message = (
            f"unknown node type {type!r}.{hint} Known types: {', '.join(known)}. A "
            f"third-party node comes from a package with a {GROUP!r} entry point"
        )
        if self.failures:
            message += "; these failed to load: " + "; ".join(self.failures)
        return message

    def _load_plugins(self) -> None:
        if not self._plugins_pending:
            return
        self._plugins_pending = False
        for entry_point in importlib.metadata.entry_points(group=GROUP):
            source = f"entry point {entry_point.name} = {entry_point.value}"
            try:
                loaded = entry_point.load()
                for node in _nodes_in(loaded, source):
                    self.register(node, source=source)
            except Exception as exc:
                self.failures.append(f"{source}: {exc}")
                log.error("kabar.nodes %s failed to load: %s", source, exc)


def _nodes_in(loaded: Any, source: str) -> list[type[Node]]:
    if isinstance(loaded, ModuleType):
        if not hasattr(loaded, "NODES"):
            raise NodesError(
                f"module {loaded.__name__} has no NODES list; add NODES = [MyNode, ...] to it"
            )
        return list(loaded.NODES)
    return [loaded]


def _check(node: Any, source: str) -> None:
    where = f" ({source})" if source else ""
    if not (inspect.isclass(node) and issubclass(node, Node)):
        raise NodesError(f"{node!r}{where} is not a Node subclass")
    if not node.type or not isinstance(node.type, str):
        raise NodesError(f"{_where(node)}{where} has no type; set type = 'my_node'")
    if not isinstance(node.version, int) or node.version < 1:
        raise NodesError(f"{_where(node)}{where}: version must be an integer from 1")
    if not (inspect.isclass(node.Params) and issubclass(node.Params, ma.Schema)):
        raise NodesError(f"{_where(node)}{where}: Params must be a marshmallow Schema class")
    if ERROR in node.outputs:
        raise NodesError(
            f"{_where(node)}{where}: do not list {ERROR!r} in outputs; every node has it"
        )


def _where(node: type[Node]) -> str:
    return f"{node.__module__}.{node.__qualname__}"


_default: Registry | None = None


def default() -> Registry:
    """The process-wide registry: built-ins plus installed plugins."""
    global _default
    if _default is None:
        from nodes.builtin import BUILTINS

        _default = Registry(BUILTINS)
    return _default


def builtin() -> Registry:
    """Only the built-in nodes (what the committed ``nodes/schema.json`` describes)."""
    from nodes.builtin import BUILTINS

    return Registry(BUILTINS, entry_points=False)


def reset() -> None:
    """Forget the process-wide registry, so the next use finds plugins again."""
    global _default
    _default = None


def get(type: str, version: int | None = None) -> type[Node]:
    """``default().get(...)``: the node class for a type (and version)."""
    return default().get(type, version)


def all() -> list[type[Node]]:
    """``default().all()``: every node class, every version."""
    return default().all()


def register(node: type[Node]) -> type[Node]:
    """Add a node to the process-wide registry (scripts; packages use entry points)."""
    return default().register(node)
