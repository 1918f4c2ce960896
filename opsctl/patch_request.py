"""``opsctl patch``'s flags as requests: patch operations and baseline documents.

Baselines are JSON documents on the wire; operators write them as YAML or JSON files, or with
flags. opsctl checks a document with the one baseline model,
:class:`fleetops.common.baselines.Baseline` (the controller checks it again with the same model),
so a mistake is reported with the file and field it is in before anything is sent.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from fleetops.common.baselines import Baseline
from fleetops.common.errors import Conflict, InternalError, InvalidInput
from fleetops.opsctl import command
from fleetops.opsctl.operation_request import check_target, rate_limits
from fleetops.v1 import operator_pb2

REBOOT_CHOICES = ("if-needed", "never")
REJECTED_ACTIONS = ("block", "allow-as-dependency")
BASELINE_HINT = "see docs/patching.md#baselines for the fields; opsctl patch baseline show NAME -o yaml shows one"


def operation_request(args: argparse.Namespace, *, install: bool) -> operator_pb2.PatchOperationRequest:
    """The request ``patch scan`` / ``patch install`` sends, checked.

    Raises:
        InvalidInput: no target or more than one kind, a bad --reboot, --max-concurrency,
            --max-errors or --timeout.
    """
    check_target(args)
    reboot = getattr(args, "reboot", None) or "if-needed"
    if install and reboot not in REBOOT_CHOICES:
        raise InvalidInput(f"bad --reboot {reboot!r}", "use --reboot if-needed or --reboot never")
    max_concurrency, max_errors = rate_limits(args)
    return operator_pb2.PatchOperationRequest(
        target=operator_pb2.Target(selector=args.target, hosts=args.host, all=args.all),
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        reboot=reboot if install else "",
        timeout_seconds=command.positive_seconds(args.timeout, "--timeout") if args.timeout else 0,
        no_refresh=args.no_refresh,
        comment=args.comment,
    )


def load_document(path: str) -> dict[str, Any]:
    """A baseline document from a YAML or JSON file (``-``: standard input); InvalidInput naming the file."""
    where = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read baseline file {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"baseline file {where} is not UTF-8 text", "write baselines as YAML or JSON") from None
    if path.lower().endswith(".json"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{where}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", BASELINE_HINT
            ) from None
    else:
        doc = _load_yaml(text, where)
    if doc is None:
        raise InvalidInput(f"{where} is empty", "a baseline needs at least name and os_family; " + BASELINE_HINT)
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"{where}: a baseline is a mapping of fields (name, os_family, rules, ...), not a {_kind(doc)}",
            BASELINE_HINT,
        )
    return doc


def _kind(value: Any) -> str:
    return {list: "list", str: "text", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _load_yaml(text: str, where: str) -> Any:
    import yaml  # only when a file is read: it costs every other command its import time

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidInput(f"{where}: not valid YAML{at}: {problem}", BASELINE_HINT) from None


def validate_document(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """*doc* checked with the one baseline model (the controller's too), in its canonical form.

    Raises:
        InvalidInput: what the model refuses, prefixed with *where* (the file or the baseline's name).
    """
    try:
        return Baseline.from_dict(doc).to_dict()
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}", exc.hint or BASELINE_HINT) from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise InvalidInput(f"{where}: not a valid baseline ({exc})", BASELINE_HINT) from None


def _words(text: str, flag: str) -> list[str]:
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["any"]:
        return []
    if "any" in words:
        raise InvalidInput(f"{flag} any stands alone", f"{flag} any matches every value; or list the values")
    return words


def _rule_flags_given(args: argparse.Namespace) -> bool:
    return any(v is not None for v in (args.classification, args.severity, args.approve_after_days))


def document_flags_given(args: argparse.Namespace) -> bool:
    """Whether any flag that changes a baseline document was given."""
    singles = (args.os, args.description, args.compliance_level, args.rejected_action, args.default)
    lists = (args.approve, args.reject, getattr(args, "unapprove", []), getattr(args, "unreject", []))
    return _rule_flags_given(args) or any(v is not None for v in singles) or any(lists)


def _pattern_list(doc: dict[str, Any], key: str, name: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise InvalidInput(f"baseline {name}: {key} must be a list of patterns, not a {_kind(value)}", BASELINE_HINT)
    return list(value)


def apply_flags(doc: dict[str, Any], args: argparse.Namespace, name: str) -> dict[str, Any]:
    """A copy of *doc* with the flags' changes; the rule flags change its only rule (or make one)."""
    doc = copy.deepcopy(doc)
    if args.os is not None:
        doc["os_family"] = args.os
    if args.description is not None:
        doc["description"] = args.description
    if args.compliance_level is not None:
        doc["compliance_level"] = args.compliance_level.strip().lower()
    if args.rejected_action is not None:
        doc["rejected_action"] = args.rejected_action.replace("-", "_")
    if args.default is not None:
        doc["is_default"] = args.default
    for key, add, drop, flag in (
        ("approved_patches", args.approve, getattr(args, "unapprove", []), "--unapprove"),
        ("rejected_patches", args.reject, getattr(args, "unreject", []), "--unreject"),
    ):
        if not add and not drop:
            continue
        patterns = _pattern_list(doc, key, name)
        for pattern in drop:
            if pattern not in patterns:
                listed = ", ".join(map(str, patterns)) or "none"
                raise InvalidInput(f"{flag} {pattern}: not in the {key} of baseline {name}", f"they are: {listed}")
            patterns.remove(pattern)
        patterns += [p for i, p in enumerate(add) if p not in patterns and p not in add[:i]]
        doc[key] = patterns
    if _rule_flags_given(args):
        rules = doc.get("rules") or []
        if not isinstance(rules, list):
            raise InvalidInput(f"baseline {name}: rules must be a list, not a {_kind(rules)}", BASELINE_HINT)
        if len(rules) > 1:
            raise InvalidInput(
                f"baseline {name} has {len(rules)} approval rules; --classification, --severity and "
                "--approve-after-days change a baseline with at most one",
                f"edit the rules in a file: opsctl patch baseline show {name} -o yaml > {name}.yaml, "
                f"then opsctl patch baseline update {name} --file {name}.yaml",
            )
        rule = rules[0] if rules else {}
        if not isinstance(rule, dict):
            raise InvalidInput(f"baseline {name}: rules[0] must be a mapping, not a {_kind(rule)}", BASELINE_HINT)
        rule = dict(rule)
        if args.classification is not None:
            rule["classifications"] = _words(args.classification, "--classification")
        if args.severity is not None:
            rule["severities"] = _words(args.severity, "--severity")
        if args.approve_after_days is not None:
            rule["approve_after_days"] = args.approve_after_days
        doc["rules"] = [rule]
    return doc


def creation_document(args: argparse.Namespace) -> dict[str, Any]:
    """The document ``baseline create`` sends: the file (if any) and the flags, checked."""
    name = args.name
    if args.file:
        doc = load_document(args.file)
        where = "standard input" if args.file == "-" else args.file
        named = doc.get("name")
        if named is not None and named != name:
            raise InvalidInput(
                f"{where} describes baseline {named!r}, not {name!r}", "give the name the file has, or change the file"
            )
        doc["name"] = name
        if args.os is None and "os_family" not in doc:
            raise InvalidInput(f"{where} has no os_family", "add os_family: linux|windows|darwin, or give --os")
        # The file on its own terms first, so that its mistakes are reported with its name.
        doc = validate_document({**doc, **({"os_family": args.os} if args.os else {})}, where)
    else:
        if args.os is None:
            raise InvalidInput("a new baseline needs --os linux|windows|darwin", "or give a --file with os_family")
        doc = {"name": name}
    return validate_document(apply_flags(doc, args, name), f"baseline {name}")


def update_document(args: argparse.Namespace, current: operator_pb2.PatchBaseline | None) -> dict[str, Any]:
    """The document ``baseline update`` sends: --file replaces *current*, flags change it; checked."""
    name = args.name
    if args.file:
        return creation_document(args)
    if not document_flags_given(args):
        raise InvalidInput(
            f"nothing to change in baseline {name}",
            "give --file FILE to replace it, or flags such as --approve PATTERN or --severity critical",
        )
    if current is None:
        raise InternalError(f"baseline {name} was not fetched before changing it")
    if current.builtin:
        raise Conflict(
            f"{name} is a built-in baseline and cannot be changed",
            f"create your own instead: opsctl patch baseline create my-{name} --os ... --default",
        )
    doc = stored_document(current)
    return validate_document(apply_flags(doc, args, name), f"baseline {name}")


def stored_document(b: operator_pb2.PatchBaseline) -> dict[str, Any]:
    try:
        doc = json.loads(b.document_json or "{}")
    except ValueError:
        raise InternalError(f"the controller sent baseline {b.name} with a document that is not JSON") from None
    if not isinstance(doc, dict):
        raise InternalError(f"the controller sent baseline {b.name} with a document that is not a mapping")
    return doc


def document_json(doc: dict[str, Any]) -> str:
    """The document as sent (``document_json``): compact, keys sorted."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
