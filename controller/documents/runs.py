"""One run of a document as a command: the one path for ``opsctl run --doc``, runbook steps and
associations (docs/automation.md).

A script document becomes a command with its scripts and ``FLEETOPS_PARAM_*`` variables
(``service.command_spec``); a patch document becomes the patch service's scan or install with
the document recorded. ``authorize`` sees the resolved hosts before anything is stored, as
``CommandService.create`` promises; the hosts are first checked against the document's platforms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetops.common.documents import Document
from fleetops.common.errors import InvalidInput
from fleetops.common.rates import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from fleetops.controller.commands.models import (
    DEFAULT_DELIVERY_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    Command,
    CommandSpec,
)
from fleetops.controller.commands.service import CommandService
from fleetops.controller.documents.models import DocumentInfo
from fleetops.controller.documents.service import check_platforms, command_spec, parameters_shown
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.patching.service import DEFAULT_PATCH_TIMEOUT, PatchOptions, PatchService

#: ``authorize(hosts, action, login)``: the document's own action and login (``None`` for patch tasks).
Authorize = Callable[[list[Host], str, "str | None"], None]


@dataclass(frozen=True)
class RunOptions:
    """What the caller chooses for a run; empty/zero means the default (the document's timeout first)."""

    max_concurrency: str = ""
    max_errors: str = ""
    timeout_seconds: int = 0
    delivery_timeout_seconds: int = 0
    run_as: str = ""
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    comment: str = ""


async def start_document_run(
    commands: CommandService,
    patching: PatchService,
    actor: str,
    target: Target,
    info: DocumentInfo,
    doc: Document,
    values: Mapping[str, Any],
    options: RunOptions,
    *,
    authorize: Authorize,
    command_id: str | None = None,
) -> tuple[Command, list[Host]]:
    """Create the command that runs *doc* (resolved *values*) on *target*.

    Raises:
        InvalidInput: a runbook (not a command), options a patch task cannot take, a host the
            document has no script for, bad limits.
        NotFound, PermissionDenied: as ``CommandService.create``.
    """
    if doc.kind == "runbook":
        raise InvalidInput(f"document {info.name!r} is a runbook", f"start it with opsctl automation start {info.name}")
    shown = parameters_shown(doc, values)

    def checked(hosts: list[Host], action: str, login: str | None) -> None:
        check_platforms(info, doc, hosts)
        authorize(hosts, action, login)

    if doc.kind == "action":
        if options.run_as or options.env or options.cwd:
            raise InvalidInput(f"{info.name} runs the agent's {doc.action} task", "leave out --as, --env and --cwd")
        patch = PatchOptions(
            max_concurrency=options.max_concurrency or DEFAULT_MAX_CONCURRENCY,
            max_errors=options.max_errors or DEFAULT_MAX_ERRORS,
            timeout_seconds=options.timeout_seconds or doc.timeout_seconds or DEFAULT_PATCH_TIMEOUT,
            refresh=bool(values.get("refresh", True)),
            reboot=str(values.get("reboot", "if-needed")),
            comment=options.comment,
            document=info.reference,
            parameters=shown,
        )
        operation = patching.scan if doc.action == "patch.scan" else patching.install
        return await operation(
            actor, target, patch, authorize=lambda hosts: checked(hosts, doc.action, None), command_id=command_id
        )
    base = CommandSpec(
        script=b"-",  # replaced by the document's
        cwd=options.cwd,
        env=dict(options.env),
        run_as=options.run_as,
        max_concurrency=options.max_concurrency or DEFAULT_MAX_CONCURRENCY,
        max_errors=options.max_errors or DEFAULT_MAX_ERRORS,
        timeout_seconds=options.timeout_seconds or doc.timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
        delivery_timeout_seconds=options.delivery_timeout_seconds or DEFAULT_DELIVERY_TIMEOUT_SECONDS,
        comment=options.comment,
    )
    return await commands.create(
        actor,
        target,
        command_spec(info, doc, values, base),
        authorize=lambda hosts: checked(hosts, "command.run", options.run_as),
        command_id=command_id,
    )
