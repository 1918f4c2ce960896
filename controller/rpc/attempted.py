"""What an operator call attempted, as audit details: the one place a request becomes evidence.

``operator_call`` and ``operator_stream`` record every call, allowed or refused, with these
details, so a reviewer reads what was tried whatever the outcome: the command line (argv) or the
script's SHA-256 and size, the target (selector, host list or ``all``), the run-as user, the
patch operation, the window or task changed, the tags set. Values that may be secret never enter
the log: of an environment only the variable NAMES are kept, never their values; scripts and
documents are kept as a digest; tokens, codes and CSRs are not read at all.

Everything is cut to bounded sizes (the limits of :mod:`fleetops.common.limits` where one fits),
with ``*_truncated`` saying so, so a hostile request cannot bloat the log. ``hosts`` names the
hosts the call named or acted on (what ``opsctl audit list --host`` finds it by; see
:mod:`fleetops.controller.audit.hosts`).

A request this module does not describe adds nothing: its event still carries the target the
handler names, the outcome and the authorization decisions.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.protobuf.message import Message

from fleetops.common.limits import LISTED_TEXT_BYTES, SELECTOR_BYTES, truncate_utf8

log = logging.getLogger(__name__)

#: Bytes of the command line kept (argv items past it are dropped, ``argv_truncated`` set).
ARGV_KEPT_BYTES = 4 * LISTED_TEXT_BYTES
#: Bytes of any one free-text field kept (comment, cwd, description, session command...).
TEXT_KEPT_BYTES = LISTED_TEXT_BYTES
#: Host names kept in ``hosts`` (``host_count`` has the number); the same bound as refusals keep.
HOSTS_KEPT = 200
#: Environment variable names, tags and roles kept.
NAMES_KEPT = 64
#: A role or baseline document is kept whole up to this size, else as its digest.
DOCUMENT_KEPT_BYTES = 4 * LISTED_TEXT_BYTES


def details(action: str, request: Any) -> dict[str, Any]:
    """What ``request`` (a call recorded as ``action``) attempted; ``{}`` for what needs no description.

    Never raises: a request this cannot describe is recorded without a description (and logged).
    """
    if not isinstance(request, Message):
        return {}
    describe = _DESCRIBERS.get(request.DESCRIPTOR.name)
    try:
        doc = describe(request) if describe is not None else _generic(request)
    except Exception:  # a description must never cost the call its audit event
        log.exception("cannot describe %s for the audit log", action)
        return {"attempted": "not described (see the controller log)"}
    if action.startswith("patch.") and action.split(".")[-1] in ("scan", "install"):
        doc = {"operation": action.split(".")[-1], **doc}
    return doc


def with_response(attempt: dict[str, Any], response: Any) -> dict[str, Any]:
    """``attempt`` completed by the answer: the hosts a run, patch operation or tagging resolved to."""
    if not isinstance(response, Message):
        return attempt
    fields = response.DESCRIPTOR.fields_by_name
    reply: Any = response  # any message type with these fields: read by name
    if "host_names" in fields:
        resolved = [str(n) for n in reply.host_names]
    elif "hosts" in fields and fields["hosts"].message_type is not None and fields["hosts"].is_repeated:
        resolved = [h.host_name or h.host_id for h in reply.hosts if hasattr(h, "host_name")]
    else:
        return attempt
    if not resolved:
        return attempt
    listed = list(dict.fromkeys([*attempt.get("hosts", []), *resolved]))
    done = {**attempt, "hosts": listed[:HOSTS_KEPT], "host_count": len(resolved)}
    if len(listed) > HOSTS_KEPT:
        done["hosts_truncated"] = True
    return done


# -- pieces --------------------------------------------------------------------------------------------


def text(value: str, limit: int = TEXT_KEPT_BYTES) -> str:
    return truncate_utf8(value, limit)


def argv(items: Iterable[str]) -> dict[str, Any]:
    """``{"argv": [...]}`` kept within ARGV_KEPT_BYTES; ``argv_truncated`` when items were dropped or cut."""
    kept: list[str] = []
    room = ARGV_KEPT_BYTES
    all_items = list(items)
    for item in all_items:
        cut = truncate_utf8(item, room)
        kept.append(cut)
        room -= len(cut.encode("utf-8", "replace")) + 1
        if cut != item or room <= 0:
            break
    doc: dict[str, Any] = {"argv": kept}
    if len(kept) < len(all_items) or (kept and kept[-1] != all_items[len(kept) - 1]):
        doc["argv_truncated"] = True
        doc["argv_items"] = len(all_items)
    return doc


def script(data: bytes) -> dict[str, Any]:
    return {"script_sha256": hashlib.sha256(data).hexdigest(), "script_bytes": len(data)}


def names(values: Iterable[str], key: str) -> dict[str, Any]:
    """Sorted names (environment variables, tag keys, roles), bounded; never any value."""
    every = sorted(set(values))
    doc: dict[str, Any] = {key: [text(v, 256) for v in every[:NAMES_KEPT]]}
    if len(every) > NAMES_KEPT:
        doc[f"{key}_truncated"] = True
    return doc


def tags(values: Mapping[str, str], key: str) -> dict[str, Any]:
    """Tags set (key=value: tags are labels, not secrets), bounded."""
    every = sorted(values.items())
    doc: dict[str, Any] = {key: {text(k, 256): text(v, 256) for k, v in every[:NAMES_KEPT]}}
    if len(every) > NAMES_KEPT:
        doc[f"{key}_truncated"] = True
    return doc


def target(message: Any) -> dict[str, Any]:
    """A fleetops.v1.Target as given (not resolved; a malformed one is recorded as it came)."""
    doc: dict[str, Any] = {}
    if message.selector:
        doc["selector"] = text(message.selector, SELECTOR_BYTES.maximum)
    if message.hosts:
        doc["hosts"] = [text(h, 255) for h in list(message.hosts)[:HOSTS_KEPT]]
        if len(message.hosts) > HOSTS_KEPT:
            doc["hosts_truncated"] = True
            doc["host_count"] = len(message.hosts)
    if message.all:
        doc["all"] = True
    return doc


def document(raw: str, key: str) -> dict[str, Any]:
    """A JSON document (role, baseline): whole when small, else its digest and size."""
    data = raw.encode("utf-8", "replace")
    if len(data) <= DOCUMENT_KEPT_BYTES:
        try:
            return {key: json.loads(raw)}
        except ValueError:
            pass
    return {f"{key}_sha256": hashlib.sha256(data).hexdigest(), f"{key}_bytes": len(data)}


def _drop_empty(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without the fields the request left unset ("", 0, empty lists and maps); booleans stay."""

    def unset(v: Any) -> bool:
        return v is None or (not isinstance(v, bool) and v in ("", 0, [], {}))

    return {k: v for k, v in doc.items() if not unset(v)}


# -- one describer per request message -------------------------------------------------------------------


def _run(r: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if r.argv:
        doc.update(argv(r.argv))
    if r.script:
        doc.update(script(r.script))
    doc.update(target(r.target))
    doc.update(
        run_as=text(r.run_as, 256),
        cwd=text(r.cwd),
        **names(r.env.keys(), "env"),
        max_concurrency=text(r.max_concurrency, 32),
        max_errors=text(r.max_errors, 32),
        comment=text(r.comment),
    )
    return _drop_empty(doc)


def _patch(r: Any) -> dict[str, Any]:
    return _drop_empty(
        {
            **target(r.target),
            "reboot": text(r.reboot, 32),
            "no_refresh": r.no_refresh or None,
            "comment": text(r.comment),
        }
    )


def _window(r: Any) -> dict[str, Any]:
    return _drop_empty(
        {
            "window": text(r.name, 255),
            "schedule": text(r.schedule),
            "timezone": text(r.timezone, 64),
            "duration_seconds": r.duration_seconds,
            "cutoff_seconds": r.cutoff_seconds,
            "enabled": r.enabled,
            "description": text(r.description),
        }
    )


def _window_task(r: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"window": text(r.window, 255), "task_type": text(r.type, 32)}
    if r.argv:
        doc.update(argv(r.argv))
    if r.script:
        doc.update(script(r.script))
    doc.update(target(r.target))
    doc.update(run_as=text(r.run_as, 256), priority=r.priority, reboot=text(r.reboot, 32))
    return _drop_empty(doc)


def _tag(r: Any) -> dict[str, Any]:
    doc = {"host": text(r.host, 255), **tags(r.set, "set"), **names(r.remove, "remove")}
    return _drop_empty(doc)


def _activation(r: Any) -> dict[str, Any]:
    return _drop_empty(
        {
            **tags(r.default_tags, "default_tags"),
            "registration_limit": r.registration_limit or 1,
            "expires_in_seconds": r.expires_in_seconds,
            **names(r.allowed_host_tags, "allowed_host_tags"),
            "description": text(r.description),
        }
    )


def _user(r: Any) -> dict[str, Any]:
    return _drop_empty({"user": text(r.name, 255), **names(r.roles, "roles_given")})


def _update_user(r: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"user": text(r.name, 255)}
    if r.set_roles:
        doc.update(names(r.roles, "roles_given"))
        doc["set_roles"] = True
    if r.set_disabled:
        doc["disabled"] = r.disabled
    return doc


def _generic(r: Any) -> dict[str, Any]:
    """A request without a describer: its Target and host fields, when it has them."""
    doc: dict[str, Any] = {}
    fields = r.DESCRIPTOR.fields_by_name
    if "target" in fields and fields["target"].message_type is not None and r.HasField("target"):
        if fields["target"].message_type.name == "Target":
            doc.update(target(r.target))
    if "host" in fields and isinstance(r.host, str) and r.host:
        doc["host"] = text(r.host, 255)
    if "hosts" in fields and fields["hosts"].is_repeated and r.hosts:
        doc["hosts"] = [text(h, 255) for h in list(r.hosts)[:HOSTS_KEPT]]
    if "set" in fields and fields["set"].message_type is not None and fields["set"].message_type.GetOptions().map_entry:
        doc.update(tags(r.set, "set"))
    if "remove" in fields and fields["remove"].is_repeated and r.remove:
        doc.update(names(r.remove, "remove"))
    if "dry_run" in fields and r.dry_run:
        doc["dry_run"] = True
    return _drop_empty(doc)


def _apply_configuration(r: Any) -> dict[str, Any]:
    """A configuration set: its source, flags and the objects it names (their specs are audited per change)."""
    labels = [text(f"{o.kind} {o.name}", 255) for o in list(r.objects)[:HOSTS_KEPT]]
    doc = {"source": text(r.source, 255), "prune": r.prune, "dry_run": r.dry_run, "objects": labels}
    return _drop_empty({**doc, "object_count": len(r.objects)})


_DESCRIBERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "ApplyConfigurationRequest": _apply_configuration,
    "RunCommandRequest": _run,
    "PatchOperationRequest": _patch,
    "MaintenanceWindow": _window,
    "SetWindowEnabledRequest": lambda r: {"window": text(r.name, 255), "enabled": r.enabled},
    "WindowTask": _window_task,
    "RemoveWindowTaskRequest": lambda r: {"window": text(r.window, 255), "task": text(r.task_id, 64)},
    "TagHostRequest": _tag,
    "CreateActivationRequest": _activation,
    "CreateUserRequest": _user,
    "UpdateUserRequest": _update_user,
    "Role": lambda r: {"role": text(r.name, 255), **document(r.document_json, "document")},
    "PatchBaseline": lambda r: {"baseline": text(r.name, 255), **document(r.document_json, "document")},
    "PatchGroup": lambda r: _drop_empty(
        {"group": text(r.name, 255), "selector": text(r.selector), "baseline": text(r.baseline, 255)}
    ),
    # Never read: secrets or keys.
    "RenewOperatorCertificateRequest": lambda r: {},
    "IssueLoginTokenRequest": lambda r: {"user": text(r.name, 255)},
}
