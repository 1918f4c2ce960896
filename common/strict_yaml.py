"""Operators' YAML and JSON files, read strictly: plain data only, and no key given twice.

PyYAML and ``json`` keep the last of two equal keys silently; in a role or a document a dropped
second ``deny:`` or ``parameters:`` block would change what is allowed or what runs, so a key
given twice is an error naming its line (``tests/unit/common/test_strict_yaml.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from fleetops.common.errors import InvalidInput


def kind_of(value: Any) -> str:
    """``a list``, ``text``, ``a number``, ``a boolean``... for messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key if isinstance(key, (str, int, float, bool)) else id(key))
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice")
        out[key] = value
    return out


def parse_text(text: str, source: str, doc_hint: str, twice_hint: str = "give each key once") -> Any:
    """*text* (JSON when it starts with ``{``, else YAML) as plain data.

    Raises:
        InvalidInput: it does not parse (with line and column), or a key is given twice; the
            message starts with *source* (a file name, ``-``...).
    """
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_json_pairs)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", doc_hint
            ) from None
        except ValueError as exc:
            raise InvalidInput(f"{source}: not valid JSON: {exc}", "give each key once") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        hint = doc_hint
        if "could not determine a constructor for the tag '!" in str(exc):
            hint = "quote values that start with '!': hosts: '!canary'; " + doc_hint
        elif "given twice" in str(problem):
            hint = twice_hint
        raise InvalidInput(f"{source}: not valid YAML{at}: {problem}", hint) from None


def parse_documents(text: str, source: str, doc_hint: str) -> list[Any]:
    """Every ``---``-separated YAML document of *text*, read as :func:`parse_text` reads one
    (plain data only, no key given twice); empty documents are left out.

    Raises:
        InvalidInput: a document does not parse (with line and column), prefixed with *source*.
    """
    try:
        return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        hint = "give each key once" if "given twice" in str(problem) else doc_hint
        raise InvalidInput(f"{source}: not valid YAML{at}: {problem}", hint) from None
