"""Is a workflow document right? ``validate(doc)`` answers with every problem it finds,
each with the JSON path of the culprit and what to do about it.

Three layers, in order, one problem per path (the first wins):

1. the JSON Schema (``nodes/schema.py``): the document's shape and each node's params;
2. each node's own marshmallow ``Params`` (and each trigger's schema), for the rules that
   span fields, with errors on templated values left to run time;
3. the graph: ``start`` and every ``next`` target exist, every output used exists on that
   node, every output named ``timeout`` is wired, every node is reachable, every template
   parses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import marshmallow as ma

from nodes import registry as registries
from nodes import templating
from nodes.base import ERROR
from nodes.registry import Registry
from nodes.triggers import TRIGGERS

Path = tuple[str | int, ...]
NODE_ID = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""What a node id looks like, so that templates can name it: ``{{ send_otp.id }}``."""
RESERVED = frozenset(
    {
        "trigger",
        "vars",
        "args",
        "nodes",
        "run",
        "now",
        "timedelta",
        "true",
        "false",
        "none",
        "and",
        "or",
        "not",
        "in",
        "is",
        "if",
        "else",
        "loop",
    }
)
"""Names a template sees before node ids, or cannot say: no node may be called so."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (``$.nodes.ask.next.timeout``) and what to do."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def json_path(parts: Iterable[str | int]) -> str:
    """``("nodes", "ask", "next")`` -> ``$.nodes.ask.next``."""
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(NODE_ID, part):
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text


def validate(doc: Any, *, registry: Registry | None = None) -> list[Problem]:
    """Every problem in a workflow document; an empty list means it is valid."""
    registry = registry or registries.default()
    if not isinstance(doc, dict):
        return [Problem("$", "a workflow is a JSON object with name, start and nodes")]
    found = _Found()
    for error in _validator(registry).iter_errors(doc):
        for path, message in _from_schema(error):
            found.add(path, message)
    for path, trigger in _triggers(doc):
        schema = TRIGGERS.get(str(trigger.get("type")))
        if schema:
            found.extend(_from_marshmallow(schema, trigger, path, templates=False))
    nodes = found_nodes if isinstance(found_nodes := doc.get("nodes"), dict) else {}
    for node_id, spec in nodes.items():
        if isinstance(spec, dict):
            _check_node(found, registry, nodes, node_id, spec)
    _check_graph(found, doc, nodes)
    return found.problems()


class _Found:
    def __init__(self) -> None:
        self._by_path: dict[Path, str] = {}

    def add(self, path: Path, message: str) -> None:
        self._by_path.setdefault(tuple(path), message)

    def extend(self, items: Iterable[tuple[Path, str]]) -> None:
        for path, message in items:
            self.add(path, message)

    def problems(self) -> list[Problem]:
        return [Problem(json_path(path), message) for path, message in self._by_path.items()]


def _validator(registry: Registry) -> jsonschema.Draft202012Validator:
    from nodes.schema import build  # late: `python -m nodes.schema` must run it first

    if "validator" not in registry.cache:
        registry.cache["validator"] = jsonschema.Draft202012Validator(build(registry))
    return registry.cache["validator"]


# -- 1. JSON Schema errors, said plainly -------------------------------------------------


def _from_schema(error: jsonschema.ValidationError) -> list[tuple[Path, str]]:
    path: Path = tuple(error.absolute_path)
    if "propertyNames" in error.schema_path:
        name = str(error.instance)
        fixed = re.sub(r"\W", "_", name)
        fixed = fixed if re.match(r"[A-Za-z_]", fixed) else f"n_{fixed}"
        return [
            (
                (*path, name),
                f"node ids are letters, digits and _ so that templates can "
                f"use them ({{{{ {fixed}.id }}}}); rename {name!r} to "
                f"{fixed!r}",
            )
        ]
    if error.validator == "required":
        properties = error.schema.get("properties", {})
        return [
            ((*path, name), f"missing: add {name!r}{_about(properties.get(name))}")
            for name in error.validator_value
            if name not in error.instance
        ]
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = list(error.schema.get("properties", {}))
        return [
            ((*path, key), f"unknown field {key!r}; the fields here are {', '.join(known)}")
            for key in error.instance
            if key not in known
        ]
    if error.validator == "anyOf" and {"$ref": "#/$defs/templated"} in error.validator_value:
        plain = [e for e in error.context or () if e.relative_schema_path[0] == 0]
        if plain:
            return [
                (
                    tuple(plain[0].absolute_path),
                    f"{_message(plain[0])} (or a template such as {{{{ vars.x }}}})",
                )
            ]
    if error.validator == "not" and not path:
        return [
            (
                ("triggers",),
                "give trigger or triggers, not both: move the trigger into the triggers list",
            )
        ]
    return [(path, _message(error))]


def _message(error: jsonschema.ValidationError) -> str:
    value, expected = error.instance, error.validator_value
    match error.validator:
        case "type":
            kinds = [expected] if isinstance(expected, str) else expected
            return f"must be {' or '.join(_A[k] for k in kinds)}, not {_kind(value)}"
        case "enum":
            choices = ", ".join(json.dumps(v) for v in expected if v is not None)
            return f"must be one of {choices}, not {json.dumps(value)}"
        case "minimum":
            return f"must be at least {expected}"
        case "maximum":
            return f"must be at most {expected}"
        case "minLength":
            return f"must be at least {expected} characters long"
        case "maxLength":
            return f"must be at most {expected} characters long"
        case "minItems":
            return f"needs at least {expected} items"
        case "maxItems":
            return f"takes at most {expected} items"
        case "minProperties":
            return f"needs at least {expected} entries"
        case "pattern":
            return f"{json.dumps(value)} does not match {expected}"
    return str(error.message)


_A = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    for python, name in (
        (str, "string"),
        (int, "integer"),
        (float, "number"),
        (dict, "object"),
        (list, "array"),
    ):
        if isinstance(value, python):
            return _A[name]
    return type(value).__name__


def _about(prop: Any) -> str:
    description = prop.get("description") if isinstance(prop, dict) else None
    return f" ({description})" if description else ""


# -- 2. marshmallow: the rules JSON Schema cannot say ------------------------------------


def _from_marshmallow(
    schema: type[ma.Schema], value: dict[str, Any], base: Path, *, templates: bool = True
) -> list[tuple[Path, str]]:
    try:
        schema().load(value)
        return []
    except ma.ValidationError as exc:
        messages = exc.normalized_messages()
    templated = (
        {path for path, text in _strings(value) if templating.is_templated(text)}
        if templates
        else set()
    )
    fields = schema().fields
    found: list[tuple[Path, str]] = []

    def walk(errors: Mapping[Any, Any], prefix: Path) -> None:
        for key, item in errors.items():
            if key == "_schema":
                if not any(p[: len(prefix)] == prefix or prefix[: len(p)] == p for p in templated):
                    found.append(((*base, *prefix), "; ".join(_flat(item))))
                continue
            path = (*prefix, key)
            if any(path[: len(p)] == p for p in templated):
                continue  # checked again once rendered
            if isinstance(item, Mapping):
                walk(item, path)
            else:
                found.append(((*base, *path), _said(_flat(item), path, fields)))

    walk(messages if isinstance(messages, Mapping) else {"_schema": messages}, ())
    return found


def _flat(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, Mapping):
        return [m for value in item.values() for m in _flat(value)]
    return [m for value in item for m in _flat(value)]


def _said(messages: list[str], path: Path, fields: Mapping[str, ma.fields.Field[Any]]) -> str:
    top = fields.get(str(path[0])) if len(path) == 1 else None
    if messages == ["Missing data for required field."]:
        about = top.metadata.get("description") if top else None
        return f"missing: add {path[-1]!r}" + (f" ({about})" if about else "")
    if messages == ["Unknown field."]:
        known = f"; the parameters are {', '.join(fields)}" if len(path) == 1 else ""
        return f"unknown parameter {path[-1]!r}{known}"
    return " ".join(messages)


def _strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _triggers(doc: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    if isinstance(doc.get("trigger"), dict):
        return [(("trigger",), doc["trigger"])]
    triggers = listed if isinstance(listed := doc.get("triggers"), list) else []
    return [(("triggers", i), t) for i, t in enumerate(triggers) if isinstance(t, dict)]


# -- 3. the graph -------------------------------------------------------------------------


def _check_node(
    found: _Found, registry: Registry, nodes: Mapping[str, Any], node_id: str, spec: dict[str, Any]
) -> None:
    base: Path = ("nodes", node_id)
    kind, version = spec.get("type"), spec.get("version")
    if not isinstance(kind, str) or not (version is None or isinstance(version, int)):
        return  # the schema said so
    if not registry.versions(kind):
        found.add((*base, "type"), registry.explain_unknown(kind))
        return
    if version is not None and version not in registry.versions(kind):
        found.add(
            (*base, "version"),
            f"{kind} has no version {version} (installed: "
            f"{', '.join(map(str, registry.versions(kind)))}); remove version to use "
            "the latest",
        )
        return
    node = registry.get(kind, version)
    params = spec.get("params", {})
    if not isinstance(params, dict):
        return
    for path, text in _strings(params):
        if templating.is_templated(text) and path[0] not in node.raw_params:
            error = templating.check(text)
            if error:
                found.add((*base, "params", *path), error)
    found.extend(_from_marshmallow(node.Params, params, (*base, "params")))
    outputs = node.outputs_for(params)
    wired = given if isinstance(given := spec.get("next"), dict) else {}
    for output, target in wired.items():
        where = (*base, "next", output)
        if outputs is not None and output not in (*outputs, ERROR):
            names = ", ".join(dict.fromkeys((*outputs, ERROR)))
            found.add(
                where,
                f"{kind} has no output {output!r}; its outputs are {names}"
                + (
                    " (a switch's are its cases' outputs and its default)"
                    if kind == "switch"
                    else ""
                ),
            )
        elif isinstance(target, str) and target not in nodes:
            found.add(
                where,
                f"goes to {target!r}, which is not a node of this workflow; "
                f"add a node {target!r} or use one of: {', '.join(nodes)}",
            )
    if outputs and "timeout" in outputs and "timeout" not in wired:
        found.add(
            (*base, "next", "timeout"),
            f'{kind} needs a timeout path: add "timeout": "<node id>" to next, '
            "to say what happens when nobody answers in time",
        )


def _check_graph(found: _Found, doc: dict[str, Any], nodes: Mapping[str, Any]) -> None:
    for node_id in nodes:
        if node_id in RESERVED:
            found.add(
                ("nodes", node_id),
                f"{node_id!r} is a name templates already use; "
                f"rename the node (e.g. {node_id}_step)",
            )
    start = doc.get("start")
    if not isinstance(start, str) or not nodes:
        return
    if start not in nodes:
        found.add(
            ("start",),
            f"{start!r} is not a node of this workflow; start at one of: {', '.join(nodes)}",
        )
        return
    reached, todo = {start}, [start]
    while todo:
        spec = nodes[todo.pop()]
        wired = spec.get("next") if isinstance(spec, dict) else None
        for target in wired.values() if isinstance(wired, dict) else ():
            if isinstance(target, str) and target in nodes and target not in reached:
                reached.add(target)
                todo.append(target)
    for node_id in nodes:
        if node_id not in reached:
            found.add(
                ("nodes", node_id),
                f"never reached from start {start!r}: wire it into "
                "another node's next, or remove it",
            )
