"""Field-level differences between two specs (plain data: mappings, lists, scalars)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetops.controller.config.interfaces import FieldChange


def field_changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """The leaves that differ, with their paths (``allow[0].actions``), mappings by key in sorted
    order and lists index by index (a list whose items are scalars is one field)."""
    if before == after:
        return []
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[FieldChange] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += field_changes(before.get(key), after.get(key), sub)
        return out
    if isinstance(before, list) and isinstance(after, list) and _nested(before + after):
        out = []
        for i in range(max(len(before), len(after))):
            out += field_changes(
                before[i] if i < len(before) else None, after[i] if i < len(after) else None, f"{path}[{i}]"
            )
        return out
    return [FieldChange(path, before, after)]


def _nested(items: list[Any]) -> bool:
    return any(isinstance(item, (Mapping, list)) for item in items)
