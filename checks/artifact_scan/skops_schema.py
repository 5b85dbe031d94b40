"""The types a skops file would import, read from its `schema.json` with json (skops is not imported).

Every node of the schema names a `__module__` and `__class__`; most nodes construct that type
(ObjectNode, ReduceNode...), FunctionNode and TypeNode only fetch it, MethodNode fetches a method
of an object, JsonNode holds plain JSON. Which of these are acceptable is decided by the same
allowlist and denylist as pickle imports (skops' own default trusted set is a subset of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_REFERENCE_LOADERS = frozenset(["FunctionNode", "TypeNode"])
_PLAIN_LOADERS = frozenset(["JsonNode"])


@dataclass(frozen=True)
class SkopsType:
    name: str  # module.name
    constructed: bool  # the loader calls or instantiates it (else only fetches it)


class SchemaError(ValueError):
    """schema.json is not a skops schema."""


def schema_types(schema: Any) -> list[SkopsType]:
    """Every type the schema refers to, once per (name, constructed), in first-seen order."""
    if not isinstance(schema, dict) or "__loader__" not in schema:
        raise SchemaError("schema.json has no root node")
    found: dict[tuple[str, bool], SkopsType] = {}
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        module, cls, loader = node.get("__module__"), node.get("__class__"), node.get("__loader__")
        if isinstance(module, str) and isinstance(cls, str) and loader not in _PLAIN_LOADERS:
            _add(found, f"{module}.{cls}", loader not in _REFERENCE_LOADERS)
            content = node.get("content")
            if loader == "MethodNode" and isinstance(content, dict) and isinstance(content.get("func"), str):
                _add(found, f"{module}.{cls}.{content['func']}", False)
        pending.extend(reversed([v for k, v in node.items() if isinstance(v, (dict, list))]))
    return list(found.values())


def _add(found: dict[tuple[str, bool], SkopsType], name: str, constructed: bool) -> None:
    found.setdefault((name, constructed), SkopsType(name, constructed))
