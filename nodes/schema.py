"""The JSON Schema of workflow files, generated from the nodes' own ``Params``.

``nodes/schema.json`` is this module's output for the built-in nodes (a test keeps it so):
point an editor at it for completion and checks. Regenerate it with::

    python -m nodes.schema > nodes/schema.json

Node parameters are chosen by ``if``/``then`` on the node's type (and version), which
gives errors inside the params rather than "matches none of". Where a parameter expects
a number, a list, a fixed word…, a string holding ``{{`` or ``{%`` is accepted too
(``#/$defs/templated``): it is checked again after rendering, when the node runs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import marshmallow as ma
from apispec.ext.marshmallow.openapi import OpenAPIConverter

from nodes.base import Node
from nodes.registry import Registry
from nodes.triggers import TRIGGERS
from nodes.validation import NODE_ID

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:kabar:workflow"
TEMPLATED = {"$ref": "#/$defs/templated"}
_TEMPLATED_DEF = {
    "type": "string",
    "pattern": r"\{\{|\{%",
    "description": "A Jinja2 template, rendered and checked when the node runs.",
}
_CONSTRAINTS = ("enum", "const", "pattern", "format", "minLength", "maxLength")

# schema2jsonschema needs no APISpec, although the converter's signature asks for one.
_NO_SPEC: Any = None
_converter = OpenAPIConverter(
    openapi_version="3.1.0", schema_name_resolver=lambda _: None, spec=_NO_SPEC
)


def to_jsonschema(schema: type[ma.Schema]) -> dict[str, Any]:
    """A marshmallow schema as JSON Schema (OpenAPI 3.1's dialect is JSON Schema)."""
    converted: dict[str, Any] = _converter.schema2jsonschema(schema)
    return converted


def params_schema(node: type[Node]) -> dict[str, Any]:
    """A node's parameters as JSON Schema, templates allowed except in ``raw_params``."""
    schema = to_jsonschema(node.Params)
    schema["properties"] = {
        name: prop if name in node.raw_params else _templatable(prop)
        for name, prop in schema.get("properties", {}).items()
    }
    return schema


def standalone_params_schema(node: type[Node]) -> dict[str, Any]:
    """``params_schema`` as a document of its own (what ``kabar nodes show`` prints)."""
    return {"$schema": DIALECT, **params_schema(node), "$defs": {"templated": _TEMPLATED_DEF}}


def build(registry: Registry) -> dict[str, Any]:
    """The whole workflow schema for the nodes in ``registry``."""
    defs: dict[str, Any] = {
        "templated": _TEMPLATED_DEF,
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "description": "Run the node again when it fails, before taking its error "
            "output. The wait doubles after each attempt.",
            "properties": {
                "max": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 10,
                    "description": "Attempts after the first.",
                },
                "backoff_seconds": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 86400,
                    "description": "Wait before the first retry.",
                },
            },
        },
    }
    conditions = []
    types = registry.types()
    for node in registry.all():
        key = f"params.{node.type}.v{node.version}"
        defs[key] = {"description": node.summary(), **params_schema(node)}
        latest = registry.versions(node.type)[-1] == node.version
        condition: dict[str, Any] = {
            "properties": {"type": {"const": node.type}, "version": {"const": node.version}},
            "required": ["type"] if latest else ["type", "version"],
        }
        conditions.append(
            {"if": condition, "then": {"properties": {"params": {"$ref": f"#/$defs/{key}"}}}}
        )
    defs["node"] = {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {
            "type": {
                "type": "string",
                "examples": types,
                "description": "The node type: " + ", ".join(types) + ".",
            },
            "version": {
                "type": "integer",
                "minimum": 1,
                "description": "Pin a node version (default: the latest).",
            },
            "description": {"type": "string"},
            "params": {"type": "object"},
            "next": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Output name -> the id of the node to go to.",
            },
            "retry": {"$ref": "#/$defs/retry"},
        },
        "allOf": conditions,
    }
    trigger_conditions = []
    for name, trigger in TRIGGERS.items():
        defs[f"trigger.{name}"] = to_jsonschema(trigger)
        trigger_conditions.append(
            {
                "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                "then": {"$ref": f"#/$defs/trigger.{name}"},
            }
        )
    defs["trigger"] = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(TRIGGERS)}},
        "allOf": trigger_conditions,
    }
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": "Kabar workflow",
        "description": "A workflow: nodes chained by their named outputs, started by a trigger.",
        "type": "object",
        "required": ["name", "start", "nodes"],
        "additionalProperties": False,
        "not": {"required": ["trigger", "triggers"]},
        "properties": {
            "$schema": {"type": "string"},
            "name": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                "description": "Unique per gateway; used in URLs (hooks) and by call_workflow.",
            },
            "description": {"type": "string"},
            "version": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "Bump it when you change the workflow: a run keeps "
                "the version it started with.",
            },
            "trigger": {"$ref": "#/$defs/trigger"},
            "triggers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/trigger"}},
            "start": {"type": "string", "description": "The id of the first node."},
            "nodes": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": NODE_ID},
                "additionalProperties": {"$ref": "#/$defs/node"},
            },
            "positions": {
                "type": "object",
                "propertyNames": {"pattern": NODE_ID},
                "description": "Where the studio draws each node (node id -> x and y in "
                "pixels). Optional; the engine ignores it.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["x", "y"],
                    "additionalProperties": False,
                    "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                },
            },
        },
        "$defs": defs,
    }


def _templatable(prop: dict[str, Any]) -> dict[str, Any]:
    """Allow a template wherever the plain schema would refuse one."""
    prop = dict(prop)
    if isinstance(prop.get("properties"), dict):
        prop["properties"] = {k: _templatable(v) for k, v in prop["properties"].items()}
    if isinstance(prop.get("items"), dict):
        prop["items"] = _templatable(prop["items"])
    if isinstance(prop.get("additionalProperties"), dict) and prop["additionalProperties"]:
        prop["additionalProperties"] = _templatable(prop["additionalProperties"])
    kinds = prop.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds or ())
    if not kinds or (kinds <= {"string", "null"} and not set(_CONSTRAINTS) & set(prop)):
        return prop  # any value, or any string: a template already passes
    outer: dict[str, Any] = {k: prop.pop(k) for k in ("description", "default") if k in prop}
    return {**outer, "anyOf": [prop, TEMPLATED]}


def main() -> None:
    from nodes.registry import builtin

    json.dump(build(builtin()), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
