"""The actions catalog as Markdown (docs/actions.md), generated from a registry.

:func:`actions_markdown` renders one section per designer catalog group (psa.automation.catalog) that holds
actions: a summary table (id@version, label, permissions, side-effectful, idempotency mode), then each action
in registration order with its description, its input and output fields (name, type, required or default,
description) and the nested shapes they refer to. Everything comes from the registry and the models' JSON
Schema, so the document changes only when an action does.

``python -m psa.automation.actions_doc`` (``make docs``) prints it for the built-in registry;
tests/unit/test_actions_doc.py fails when docs/actions.md is stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from psa.automation.actions import builtin_registry
from psa.automation.catalog import build_catalog
from psa.automation.registry import ActionDef, ActionRegistry

REGENERATE = "make docs"
HEADER = f"""# Actions

<!-- Generated from the action registry by `{REGENERATE}` (python -m psa.automation.actions_doc). Do not edit. -->

Every built-in workflow action, grouped as in the workflow designer's catalog. An action is addressed as
`id@version`. Its permissions (`resource:action`) are checked in order before the handler runs; "from the
input" marks an action whose input implies more. A side-effectful action runs under the full contract (ledger,
audit row and outbox events in one transaction); its idempotency mode says which key deduplicates a retry:
`engine`, the runtime's key, or `action`, the input's `idempotency_key` when given (docs/automation.md,
"Action contract" and "Idempotency"). Input fields not marked required may be omitted; unknown fields are
ignored.
"""
CONSTRAINTS = (
    ("minLength", "min length {}"),
    ("maxLength", "max length {}"),
    ("minItems", "min items {}"),
    ("exclusiveMinimum", "> {}"),
    ("minimum", ">= {}"),
    ("exclusiveMaximum", "< {}"),
    ("maximum", "<= {}"),
)


def actions_markdown(registry: ActionRegistry) -> str:
    """The Markdown catalog of ``registry``: the header, then one section per catalog group with actions (in
    catalog order; groups without actions are left out), each action in registration order."""
    sections = [HEADER]
    for record in build_catalog(registry):
        members = [a for a in registry.list() if a.id in record.allowed_action_ids]
        if not members:
            continue
        lines = [f"## {record.label}", ""]
        if record.description:
            lines += [record.description, ""]
        lines += [
            "| Action | Label | Permissions | Side-effectful | Idempotency |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            _row(
                f"`{a.key}`",
                a.label,
                _permissions(a),
                "yes" if a.side_effectful else "no",
                a.idempotency or "none",
            )
            for a in members
        ]
        sections.append("\n".join(lines) + "\n")
        sections += [_action_section(a) for a in members]
    return "\n".join(sections)


def _permissions(action: ActionDef) -> str:
    listed = [f"`{resource}:{verb}`" for resource, verb in action.permissions]
    if action.input_permissions is not None:
        listed.append("from the input")
    return ", ".join(listed) or "none"


def _action_section(action: ActionDef) -> str:
    input_schema, output_schema = action.input_schema(), action.output_schema()
    lines = [f"### `{action.key}`: {action.label}", ""]
    if action.description.strip():
        lines += [_sentence(action.description), ""]
    lines += ["Input:", "", *_fields_table(input_schema, input_schema), ""]
    lines += ["Output:", "", *_fields_table(output_schema, output_schema), ""]
    for name, shape in _nested_shapes(input_schema, output_schema):
        lines += [f"`{name}`:", "", *_fields_table(shape, shape), ""]
    return "\n".join(lines)


def _fields_table(root: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties") or {}
    if not properties:
        return ["No fields."]
    required = set(schema.get("required") or ())
    lines = ["| Field | Type | Required | Description |", "| --- | --- | --- | --- |"]
    for name, prop in properties.items():
        if name in required:
            presence = "yes"
        elif "default" in prop and prop["default"] is not None:
            presence = f"no (default `{json.dumps(prop['default'])}`)"
        else:
            presence = "no"
        lines.append(_row(f"`{name}`", _type(prop), presence, _description(prop)))
    return lines


def _type(prop: dict[str, Any]) -> str:
    """A JSON Schema type in words: ``string (uuid)``, ``array of PhoneRow``, ``"exact" / "last7"``,
    ``integer (> 0, <= 100)``, ``array (min items 1) of string (min length 1)``, ``... or null``."""
    details = [prop["format"]] if "format" in prop else []
    details += [template.format(prop[key]) for key, template in CONSTRAINTS if key in prop]
    suffix = f" ({', '.join(details)})" if details else ""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        variants = [v for v in prop["anyOf"] if v.get("type") != "null"]
        nullable = " or null" if len(variants) < len(prop["anyOf"]) else ""
        return " or ".join(_type(v) for v in variants) + nullable
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " / ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if prop.get("type") == "array":
        return f"array{suffix} of {_type(prop.get('items') or {})}"
    return str(prop.get("type", "any")) + suffix


def _description(prop: dict[str, Any]) -> str:
    text = prop.get("description") or ""
    kind = prop.get("x-workflow-picker-kind")
    if kind:
        text = f"{text} (picker: {kind})".strip()
    return text


def _nested_shapes(*schemas: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``$defs`` the schemas refer to, in the order they are first reached, each once."""
    seen: set[str] = set()
    for root in schemas:
        definitions = root.get("$defs") or {}
        pending = list(_refs(root.get("properties") or {}))
        while pending:
            name = pending.pop(0)
            if name in seen or name not in definitions:
                continue
            seen.add(name)
            yield name, definitions[name]
            pending += _refs(definitions[name].get("properties") or {})


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
        return found + [name for value in node.values() for name in _refs(value)]
    if isinstance(node, list):
        return [name for value in node for name in _refs(value)]
    return []


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def main() -> None:
    """Print the catalog of the built-in registry (``make docs`` writes it to docs/actions.md)."""
    print(actions_markdown(builtin_registry()), end="")


if __name__ == "__main__":
    main()
