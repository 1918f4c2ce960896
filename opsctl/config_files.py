"""Reading configuration sets for ``opsctl apply`` and ``opsctl diff``: files, directories, stdin.

A set is YAML: one object per ``---`` document, each ``kind``, ``name`` and ``spec`` and nothing
else (docs/apply.md). A directory is every ``*.yaml`` and ``*.yml`` file in it (not in its
subdirectories), in name order. Each object remembers where it was read (``FILE, document N``,
counting from 1), so that an error from the controller names the file and the document. The
specs are checked by the controller (the same checks as each kind's own commands).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetops.common.errors import InvalidInput
from fleetops.common.strict_yaml import kind_of, parse_documents

DOC_HINT = "each document is kind: KIND, name: NAME and spec: {...}; see docs/apply.md"
TOP_KEYS = ("kind", "name", "spec")
MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ReadObject:
    kind: str
    name: str
    spec: Any
    origin: str


def _plain(value: Any) -> Any:
    """YAML dates and times as ISO 8601 text (the wire is JSON)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def files_of(path: str) -> list[Path]:
    """The files *path* names: itself, or a directory's ``*.yaml``/``*.yml`` in name order."""
    p = Path(path)
    if p.is_dir():
        found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in (".yaml", ".yml"))
        if not found:
            raise InvalidInput(f"{path} has no .yaml or .yml files", "give a file, a directory of them, or -")
        return found
    if not p.exists():
        raise InvalidInput(f"no such file or directory: {path}", "give a file, a directory of YAML files, or -")
    return [p]


def objects_of_text(text: str, where: str) -> list[ReadObject]:
    """The objects of one file's *text*; errors name *where* and the document."""
    out = []
    for i, doc in enumerate(parse_documents(text, where, DOC_HINT), 1):
        origin = f"{where}, document {i}"
        if not isinstance(doc, Mapping):
            raise InvalidInput(f"{origin}: an object is a mapping, got {kind_of(doc)}", DOC_HINT)
        unknown = sorted(str(k) for k in doc if k not in TOP_KEYS)
        if unknown:
            raise InvalidInput(f"{origin}: unknown field(s): {', '.join(unknown)}", DOC_HINT)
        for key in ("kind", "name"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise InvalidInput(f"{origin}: {key} must be text, got {kind_of(doc.get(key))}", DOC_HINT)
        spec = doc.get("spec")
        if spec is not None and not isinstance(spec, Mapping):
            raise InvalidInput(f"{origin} ({doc['kind']} {doc['name']}): spec must be a mapping", DOC_HINT)
        out.append(ReadObject(doc["kind"], doc["name"], _plain(spec or {}), origin))
    return out


def read_set(path: str) -> list[ReadObject]:
    """Every object *path* (a file, a directory, or ``-`` for standard input) holds.

    Raises:
        InvalidInput: a file cannot be read or parsed, or a document is not an object.
    """
    if path == "-":
        return objects_of_text(sys.stdin.read(), "standard input")
    out: list[ReadObject] = []
    for file in files_of(path):
        try:
            if file.stat().st_size > MAX_FILE_BYTES:
                raise InvalidInput(f"{file} is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB", "split it")
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"{file} is not UTF-8 text", "save it as UTF-8") from None
        out += objects_of_text(text, str(file))
    return out


def default_source(path: str) -> str:
    """The source name a set is applied under when ``--source`` is not given: the file or directory name."""
    if path == "-":
        raise InvalidInput("a set read from standard input needs a name", "give --source NAME (e.g. the repository)")
    return Path(path).resolve().name


def dump_objects(objects: list[tuple[str, str, Any]]) -> str:
    """Objects as a multi-document YAML set that :func:`read_set` reads back."""
    docs = [{"kind": kind, "name": name, "spec": spec} for kind, name, spec in objects]
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, allow_unicode=True, explicit_start=True)
