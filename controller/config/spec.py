"""Reading specs strictly: the shared checks of every kind's fields (unknown keys, types, durations)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from fleetops.common.durations import format_seconds, parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.common.strict_yaml import kind_of

DOC_HINT = "see docs/apply.md for the format of each kind"


def mapping(value: Any, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    """*value* as a mapping with only *known* keys; ``None`` is an empty mapping.

    Raises:
        InvalidInput: not a mapping, or an unknown key (with a close match when there is one).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be a mapping, got {kind_of(value)}", DOC_HINT)
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        prefix = f"{where}: " if where != "spec" else "spec: "
        raise InvalidInput(
            f"{prefix}unknown field(s): {', '.join(unknown)}", f"{guess}the fields are {', '.join(known)}"
        )
    return value


def text(value: Any, where: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be text, got {kind_of(value)}", "quote it in YAML")
    return value


def integer(value: Any, where: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where} must be a whole number, got {kind_of(value)}", f"e.g. {where.split('.')[-1]}: 10")
    return value


def boolean(value: Any, where: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} must be true or false, got {kind_of(value)}", f"e.g. {where.split('.')[-1]}: true")
    return value


def seconds(value: Any, where: str, *, allow_zero: bool = False) -> int:
    """A duration (``90m``, ``1h30m``; a number is seconds) in whole seconds."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{where} must be a duration such as 30m, got {kind_of(value)}", "e.g. 1h30m")
    if isinstance(value, int):
        total = value
    elif isinstance(value, str) and allow_zero and value.strip() == "0":
        total = 0
    elif isinstance(value, str):
        try:
            total = int(parse_duration(value).total_seconds())
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}", exc.hint) from None
    else:
        raise InvalidInput(f"{where} must be a duration such as 30m, got {kind_of(value)}", "e.g. 1h30m")
    if total < 0 or (total == 0 and not allow_zero):
        raise InvalidInput(f"{where} must be positive", "e.g. 30m")
    return total


def duration_text(total: int) -> str:
    """Seconds as the canonical duration text (``5400`` -> ``1h30m``)."""
    return format_seconds(total)


def string_map(value: Any, where: str) -> dict[str, str]:
    """A mapping of names to text values; numbers and booleans are written as the CLI would pass them."""
    out: dict[str, str] = {}
    for key, item in mapping(value, where, tuple(str(k) for k in (value or {}))).items():
        if isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        elif isinstance(item, (int, float, str)):
            out[str(key)] = str(item)
        elif isinstance(item, list) and all(isinstance(i, str) for i in item):
            out[str(key)] = ",".join(item)
        else:
            raise InvalidInput(f"{where}.{key} must be text, got {kind_of(item)}", "quote it in YAML")
    return dict(sorted(out.items()))


#: The ways a spec names its hosts, as opsctl's --target, --host and --all.
TARGET_FIELDS = ("target", "hosts", "all")


def target_fields(spec: Mapping[str, Any], where: str, *, required: bool = True) -> dict[str, Any]:
    """The target part of a spec in canonical form: ``{target: SELECTOR}``, ``{hosts: [...]}`` or ``{all: true}``."""
    from fleetops.common.errors import SelectorError
    from fleetops.common.selectors import Selector

    given = [k for k in TARGET_FIELDS if spec.get(k) not in (None, False, "", [])]
    if len(given) > 1:
        raise InvalidInput(f"{where}: give one of target, hosts or all, not {' and '.join(given)}", DOC_HINT)
    if not given:
        if required:
            raise InvalidInput(f"{where}: no target", "give target: SELECTOR, hosts: [NAME...] or all: true")
        return {}
    key = given[0]
    if key == "target":
        selector = text(spec["target"], f"{where}.target")
        try:
            return {"target": str(Selector.parse(selector))}
        except SelectorError as exc:
            raise InvalidInput(f"{where}.target: {exc.message}", exc.hint) from None
    if key == "hosts":
        hosts = spec["hosts"]
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
            raise InvalidInput(f"{where}.hosts must be a list of host names or ids", "e.g. hosts: [web-1, web-2]")
        return {"hosts": list(dict.fromkeys(hosts))}
    if spec["all"] is not True:
        raise InvalidInput(f"{where}.all must be true (or left out)", "all: true targets every host")
    return {"all": True}
