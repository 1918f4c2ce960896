"""``kind: MaintenanceWindow``: a window (docs/maintenance-windows.md) with its tasks inline.

Tasks have no names: a set's tasks are compared with the stored ones as a whole, and a task
that differs is removed and added again (``window.task.remove``/``window.task.add``, as by
hand); an unchanged task is left alone. Changing or deleting a window needs ``window.manage``
and the rights each of its tasks needs, and adding a task the rights that task needs, exactly as
``opsctl window update|delete`` and ``opsctl window task add|remove`` (``windows/authority.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleetops.common import documents, rates
from fleetops.common.errors import InvalidInput
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.config import spec as fields
from fleetops.controller.config.association import rate_text, target_of
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, Spec
from fleetops.controller.documents.service import DocumentService
from fleetops.controller.windows.models import CutoffBehavior, TaskType, Window, WindowTask, check_name
from fleetops.controller.windows.scheduler import schedule_of
from fleetops.controller.windows.service import WindowService

KEYS = (
    "schedule",
    "timezone",
    "duration",
    "cutoff",
    "cutoff_behavior",
    "start_date",
    "end_date",
    "offset",
    "enabled",
    "description",
    "tasks",
)
TASK_KEYS = (
    "priority",
    "type",
    "target",
    "hosts",
    "all",
    "max_concurrency",
    "max_errors",
    "reboot",
    "command",
    "script",
    "run_as",
    "timeout",
    "description",
    "document",
    "parameters",
)
RANK = 50


def _date(value: Any, where: str, timezone: str) -> str:
    """An ISO 8601 date or date-time (in the window's time zone unless it names an offset), as UTC text."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = fields.text(value, where)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{where}: {text!r} is not an ISO 8601 date", "e.g. 2026-03-01 or 2026-03-01T08:00"
            ) from None
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(timezone) if timezone != "UTC" else UTC)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"timezone: unknown time zone {timezone!r}", "e.g. Europe/Paris or UTC") from None
    return moment.astimezone(UTC).isoformat()


def _task(raw: Any, where: str) -> Spec:
    given = fields.mapping(raw, where, TASK_KEYS)
    out: Spec = {"priority": fields.integer(given.get("priority"), f"{where}.priority", -1)}
    if out["priority"] < 0:
        raise InvalidInput(f"{where}.priority: a task needs a priority (0-1000)", "lower runs first, e.g. priority: 1")
    kind = fields.text(given.get("type"), f"{where}.type")
    if kind not in tuple(TaskType):
        raise InvalidInput(
            f"{where}.type: unknown task type {kind!r}", "patch-scan, patch-install, run, document or automation"
        )
    out["type"] = kind
    out.update(fields.target_fields(given, where, required=kind != TaskType.AUTOMATION))
    for key, parse in (("max_concurrency", rates.max_concurrency), ("max_errors", rates.max_errors)):
        if value := rate_text(given.get(key), f"{where}.{key}", parse):
            out[key] = value
    for key in ("reboot", "run_as", "description", "document"):
        if value := fields.text(given.get(key), f"{where}.{key}"):
            out[key] = value
    command = given.get("command")
    if command is not None:
        if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
            raise InvalidInput(f"{where}.command must be a list of words", "e.g. command: [systemctl, restart, nginx]")
        out["command"] = list(command)
    if script := fields.text(given.get("script"), f"{where}.script"):
        out["script"] = script
    if given.get("timeout") is not None:
        out["timeout"] = fields.duration_text(fields.seconds(given["timeout"], f"{where}.timeout"))
    if parameters := fields.string_map(given.get("parameters"), f"{where}.parameters"):
        out["parameters"] = parameters
    try:
        task_of("check", out).check()
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}", exc.hint) from None
    return out


def task_of(window: str, spec: Spec) -> WindowTask:
    """The WindowTask a task spec describes (as ``opsctl window task add`` would send it)."""
    return WindowTask(
        window=window,
        priority=spec["priority"],
        type=TaskType(spec["type"]),
        target=target_of(spec),
        max_concurrency=spec.get("max_concurrency", ""),
        max_errors=spec.get("max_errors", ""),
        reboot=spec.get("reboot", ""),
        argv=tuple(spec.get("command", ())),
        script=spec["script"].encode() if "script" in spec else None,
        run_as=spec.get("run_as", ""),
        timeout_seconds=fields.seconds(spec["timeout"], "timeout") if "timeout" in spec else 0,
        description=spec.get("description", ""),
        document=spec.get("document", ""),
        parameters=dict(spec.get("parameters", {})),
    )


def task_spec(task: WindowTask) -> Spec:
    """A stored task as a spec (the inverse of :func:`task_of`)."""
    spec: Spec = {"priority": task.priority, "type": str(task.type)}
    if task.target.selector:
        spec["target"] = task.target.selector
    elif task.target.hosts:
        spec["hosts"] = list(task.target.hosts)
    elif task.target.all:
        spec["all"] = True
    for key, value in (
        ("max_concurrency", task.max_concurrency),
        ("max_errors", task.max_errors),
        ("reboot", task.reboot),
        ("run_as", task.run_as),
        ("description", task.description),
        ("document", task.document),
    ):
        if value:
            spec[key] = value
    if task.argv:
        spec["command"] = list(task.argv)
    if task.script:
        spec["script"] = task.script.decode("utf-8", errors="replace")
    if task.timeout_seconds:
        spec["timeout"] = fields.duration_text(task.timeout_seconds)
    if task.parameters:
        spec["parameters"] = dict(sorted(task.parameters.items()))
    return spec


def _task_key(task: Spec) -> tuple[int, str]:
    return task["priority"], json.dumps(task, sort_keys=True)


def window_of(name: str, spec: Spec) -> Window:
    return Window(
        name=name,
        schedule=spec["schedule"],
        timezone=spec.get("timezone", "UTC"),
        duration_seconds=fields.seconds(spec["duration"], "duration"),
        cutoff_seconds=fields.seconds(spec["cutoff"], "cutoff", allow_zero=True) if "cutoff" in spec else 0,
        cutoff_behavior=CutoffBehavior(spec.get("cutoff_behavior", "continue")),
        start_date=datetime.fromisoformat(spec["start_date"]) if "start_date" in spec else None,
        end_date=datetime.fromisoformat(spec["end_date"]) if "end_date" in spec else None,
        offset_days=spec.get("offset", 0),
        enabled=spec["enabled"],
        description=spec.get("description", ""),
    )


def _without_tasks(spec: Spec | None) -> Spec:
    return {k: v for k, v in (spec or {}).items() if k != "tasks"}


class WindowKind:
    """Maintenance windows and their tasks, through the calls of ``opsctl window`` and ``window task``."""

    kind = "MaintenanceWindow"
    rank = RANK
    read_action = "window.manage"

    def __init__(self, windows: WindowService, documents_service: DocumentService) -> None:
        self._windows = windows
        self._documents = documents_service

    def order(self, spec: Spec | None) -> int:
        return RANK

    def canonical(self, name: str, spec: Any) -> Spec:
        check_name(name)
        given = fields.mapping(spec, "spec", KEYS)
        schedule = fields.text(given.get("schedule"), "schedule").strip()
        if not schedule:
            raise InvalidInput("schedule: a window needs a schedule", "cron(0 2 ? * SUN *), rate(1 day) or at(...)")
        timezone = fields.text(given.get("timezone"), "timezone", "UTC").strip() or "UTC"
        out: Spec = {"schedule": schedule}
        if timezone.upper() != "UTC":
            out["timezone"] = timezone
        if given.get("duration") is None:
            raise InvalidInput("duration: a window needs a duration", "e.g. duration: 3h")
        out["duration"] = fields.duration_text(fields.seconds(given["duration"], "duration"))
        if given.get("cutoff") not in (None, 0, "0"):
            out["cutoff"] = fields.duration_text(fields.seconds(given["cutoff"], "cutoff"))
        behavior = fields.text(given.get("cutoff_behavior"), "cutoff_behavior", "continue")
        if behavior not in tuple(CutoffBehavior):
            raise InvalidInput(f"cutoff_behavior: unknown behaviour {behavior!r}", "continue or cancel")
        if behavior != CutoffBehavior.CONTINUE:
            out["cutoff_behavior"] = behavior
        for key in ("start_date", "end_date"):
            if given.get(key) is not None:
                out[key] = _date(given[key], key, timezone)
        if offset := fields.integer(given.get("offset"), "offset", 0):
            out["offset"] = offset
        out["enabled"] = fields.boolean(given.get("enabled"), "enabled", True)
        if description := fields.text(given.get("description"), "description"):
            out["description"] = description
        raw_tasks = given.get("tasks") or []
        if not isinstance(raw_tasks, list):
            raise InvalidInput("tasks must be a list of tasks", "tasks: [{priority: 1, type: patch-scan, target: ...}]")
        tasks = sorted((_task(t, f"tasks[{i}]") for i, t in enumerate(raw_tasks)), key=_task_key)
        if tasks:
            out["tasks"] = tasks
        return out

    async def current(self) -> dict[str, Spec]:
        out: dict[str, Spec] = {}
        for w in await self._windows.list():
            spec: Spec = {"schedule": w.schedule}
            if w.timezone and w.timezone.upper() != "UTC":
                spec["timezone"] = w.timezone
            spec["duration"] = fields.duration_text(w.duration_seconds)
            if w.cutoff_seconds:
                spec["cutoff"] = fields.duration_text(w.cutoff_seconds)
            if w.cutoff_behavior != CutoffBehavior.CONTINUE:
                spec["cutoff_behavior"] = str(w.cutoff_behavior)
            if w.start_date is not None:
                spec["start_date"] = w.start_date.astimezone(UTC).isoformat()
            if w.end_date is not None:
                spec["end_date"] = w.end_date.astimezone(UTC).isoformat()
            if w.offset_days:
                spec["offset"] = w.offset_days
            spec["enabled"] = w.enabled
            if w.description:
                spec["description"] = w.description
            tasks = sorted((task_spec(t) for t in await self._windows.tasks(w.name)), key=_task_key)
            if tasks:
                spec["tasks"] = tasks
            out[w.name] = spec
        return out

    async def _check_task(self, task: WindowTask, pending: Mapping[str, documents.Document], where: str) -> None:
        """As ``AddWindowTask``: the document exists, is of the task's type and takes these parameters."""
        if not task.runs_document:
            return
        try:
            name, version = documents.split_reference(task.document)
            if version is None and name in pending:
                doc = pending[name]
            else:
                _, doc = await self._documents.resolve(task.document)
            if (doc.kind == "runbook") != (task.type == TaskType.AUTOMATION):
                wanted = "automation" if doc.kind == "runbook" else "document"
                raise InvalidInput(f"document {name} is {'a runbook' if doc.kind == 'runbook' else 'not a runbook'}",
                                   f"use type: {wanted}")  # fmt: skip
            doc.resolve(dict(task.parameters))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}", exc.hint) from None

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        decisions = [authorize(checking.roles, "window.manage", user=checking.user, what="manage maintenance windows")]
        if not decisions[0]:
            return decisions
        if after is not None:
            window = window_of(name, after)
            window.check(self._windows.min_duration)
            schedule_of(replace(window, created_at=datetime.now(UTC)))  # the expression, zone, dates, offset
        authority = self._windows.authority
        if before is not None and _changes_anything(before, after):
            stored = await self._windows.tasks(name)
            decisions += await authority.editor_decisions(checking.user, checking.roles, name, stored)
        for i, added in enumerate(_added(before, after)):
            task = task_of(name, added)
            await self._check_task(task, checking.documents, f"tasks[{i}]")
            decisions += await authority.editor_decisions(
                checking.user, checking.roles, name, [], new=task, pending=checking.documents
            )
        return decisions

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        name = change.name
        if change.action == "delete":
            await self._windows.delete(name)
            return [("window.delete", name, {})]
        after = change.after
        assert after is not None
        entries: list[AuditEntry] = []
        if change.action == "create":
            await self._windows.create(actor, window_of(name, after))
            entries.append(("window.create", name, {}))
        else:
            if _without_tasks(change.before) != _without_tasks(after):
                await self._windows.update(window_of(name, after))
                entries.append(("window.update", name, {}))
            wanted = [json.dumps(t, sort_keys=True) for t in after.get("tasks", [])]
            for task in await self._windows.tasks(name):
                key = json.dumps(task_spec(task), sort_keys=True)
                if key in wanted:
                    wanted.remove(key)  # kept as it is
                    continue
                await self._windows.remove_task(name, task.id)
                entries.append(("window.task.remove", f"{name}/{task.id}", {}))
        for added in _added(change.before, after):
            task = await self._windows.add_task(task_of(name, added), actor)
            entries.append(("window.task.add", f"{name}/{task.id}", {"type": str(task.type)}))
        return entries


def _added(before: Spec | None, after: Spec | None) -> list[Spec]:
    """The tasks of *after* that *before* does not have (as a multiset)."""
    have = [json.dumps(t, sort_keys=True) for t in (before or {}).get("tasks", [])]
    out = []
    for task in (after or {}).get("tasks", []):
        key = json.dumps(task, sort_keys=True)
        if key in have:
            have.remove(key)
        else:
            out.append(task)
    return out


def _changes_anything(before: Spec, after: Spec | None) -> bool:
    return after is None or before != after
