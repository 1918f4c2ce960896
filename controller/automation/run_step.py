"""A runbook's ``run`` step: a document on a target, batch by batch, widening only while healthy.

The first time the step runs it fixes everything it will do, and saves it before acting: the
document version, the parameters as rendered, the hosts the target matched then and how they
split into batches (``batches: [1, "10%", "100%"]``: a canary, then up to 10 %, then the rest).
Then, batch by batch: the document runs on the batch's hosts as one command; when it succeeded
and the step has a ``health`` probe, the probe runs on those hosts (a document, a command, or a
URL fetched *from* each host), retried up to ``retries`` times ``interval`` apart. The step fails
at the first batch whose command or probe fails; later batches never start.

Each command's id is saved before the command is created. A controller restarted mid-step finds
the id: when the command exists it waits for it, when it does not it creates it with that id, so
no batch runs twice (and each host's agent journal makes each invocation run once).

Every run is decided as the execution's starter, now: the document's own action or
``document.run`` for it on every host of the step (``authz.documents``), and a ``command`` probe
needs ``command.run`` there too. A refusal fails the step (audited) before anything is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fleetops.common import documents, rates
from fleetops.common.errors import FleetopsError, InvalidInput, NotFound, PermissionDenied
from fleetops.common.runbooks import HealthProbe, RunStep
from fleetops.common.states import CommandStatus
from fleetops.controller.authz.documents import decide, document_choices
from fleetops.controller.automation.context import Cancelled, StepContext, StepResult
from fleetops.controller.automation.models import STDOUT_OUTPUT_BYTES, StepStatus
from fleetops.controller.automation.plan import batch_sizes, render, render_parameters
from fleetops.controller.commands.models import Command, CommandSpec
from fleetops.controller.commands.service import new_command_id
from fleetops.controller.documents.runs import RunOptions, start_document_run
from fleetops.controller.fleet.models import Host, Target

URL_PROBE_SHELL = """\
url="$FLEETOPS_PROBE_URL"
if command -v curl >/dev/null 2>&1; then exec curl -fsS -o /dev/null --max-time 10 "$url"; fi
if command -v wget >/dev/null 2>&1; then exec wget -q -O /dev/null -T 10 "$url"; fi
exec python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' "$url"
"""
URL_PROBE_POWERSHELL = """\
try { Invoke-WebRequest -UseBasicParsing -TimeoutSec 10 -Uri $env:FLEETOPS_PROBE_URL | Out-Null; exit 0 }
catch { Write-Error $_; exit 1 }
"""
STARTER_HINT = "ask for a role that allows it, then start the runbook again"


def _failed(detail: str, outputs: dict[str, Any]) -> StepResult:
    return StepResult(StepStatus.FAILED, detail, {**outputs, "status": "failed"})


async def run(ctx: StepContext, step: RunStep) -> StepResult:
    """Run *step* from where its saved state says it is; the step's result."""
    if "batches" not in ctx.state:
        try:
            await _plan(ctx, step)
        except FleetopsError as exc:
            return _failed(exc.message, {"succeeded": 0, "failed": 0, "hosts": "", "commands": "", "stdout": ""})
    batches: list[list[str]] = ctx.state["batches"]
    while ctx.state["batch"] < len(batches):
        index = ctx.state["batch"]
        label = f"batch {index + 1} of {len(batches)}"
        if ctx.state["phase"] == "run":
            command = await _ensure_command(
                ctx, "pending", lambda cid, hosts: _start_run(ctx, hosts, cid), batches[index]
            )
            if isinstance(command, StepResult):
                return command
            ctx.state["commands"].append(command.id)
            ctx.state["pending"] = ""
            if command.status is not CommandStatus.SUCCESS:
                ctx.state["failed_command"] = command.id
                await ctx.save(detail=f"{label}: command {command.id} {command.status.value}")
                return _failed(f"{label}: command {command.id} {_counts(command)}", await _outputs(ctx))
            ctx.state["done"] = [*ctx.state["done"], *batches[index]]
            if step.health is not None:
                ctx.state["phase"], ctx.state["probe_attempt"] = "probe", 0
            else:
                ctx.state["batch"] = index + 1
            await ctx.save(detail=f"{label}: {command.id} succeeded")
            continue
        probe = step.health
        assert probe is not None
        command = await _ensure_command(ctx, "pending_probe", _probe_starter(ctx, probe), batches[index])
        if isinstance(command, StepResult):
            return command
        ctx.state["probes"].append(command.id)
        ctx.state["pending_probe"] = ""
        if command.status is CommandStatus.SUCCESS:
            ctx.state["phase"], ctx.state["batch"] = "run", index + 1
            await ctx.save(detail=f"{label}: healthy ({command.id})")
            continue
        if ctx.state["probe_attempt"] < probe.retries:
            ctx.state["probe_attempt"] += 1
            await ctx.save(detail=f"{label}: health probe {command.id} {command.status.value}, retrying")
            await _sleep(ctx, probe.interval_seconds)
            continue
        ctx.state["failed_command"] = command.id
        await ctx.save()
        return _failed(f"{label}: health probe failed ({command.id} {_counts(command)})", await _outputs(ctx))
    return StepResult(
        StepStatus.SUCCESS, f"{len(batches)} batch(es) done", {**await _outputs(ctx), "status": "success"}
    )


def _probe_starter(ctx: StepContext, probe: HealthProbe) -> Any:
    return lambda command_id, target: _start_probe(ctx, probe, target, command_id)


async def _sleep(ctx: StepContext, seconds: float) -> None:
    deadline = datetime.now().timestamp() + seconds
    while (left := deadline - datetime.now().timestamp()) > 0:
        await ctx.pause(left)


async def _plan(ctx: StepContext, step: RunStep) -> None:
    """Fix the document version, parameters, hosts and batches; authorize; save before anything runs.

    Raises:
        InvalidInput, NotFound, PermissionDenied: the step fails with the message.
    """
    reference = step.document + (f":{step.version}" if step.version else "")
    info, doc = await ctx.services.documents.resolve(reference)
    if doc.kind == "runbook":
        raise InvalidInput(f"{info.name} is a runbook; a run step runs a command or action document")
    parameters = render_parameters(step.parameters, ctx.template_context)
    doc.resolve(parameters)  # InvalidInput naming the parameter
    selector = render(step.target, ctx.template_context)
    hosts = await ctx.services.fleet.resolve_target(Target(selector=selector))
    if not hosts:
        raise NotFound(f"no host matches {selector!r}")
    hosts.sort(key=lambda h: (h.name, h.id))
    await _authorize(ctx, info.name, doc, hosts, probe=step.health)
    sizes = batch_sizes(step.batches, len(hosts))
    batches, start = [], 0
    for size in sizes:
        batches.append([h.id for h in hosts[start : start + size]])
        start += size
    max_concurrency = render(step.max_concurrency, ctx.template_context)
    max_errors = render(step.max_errors, ctx.template_context)
    rates.max_concurrency(max_concurrency or rates.DEFAULT_MAX_CONCURRENCY)  # InvalidInput
    rates.max_errors(max_errors or rates.DEFAULT_MAX_ERRORS)
    limits = {
        "max_concurrency": max_concurrency,
        "max_errors": max_errors,
        "timeout_seconds": step.timeout_seconds or 0,
    }
    probe_parameters: dict[str, Any] = {}
    if step.health is not None and step.health.document:
        probe_parameters = render_parameters(step.health.parameters, ctx.template_context)
    ctx.state.update(
        document=info.reference,
        parameters=_jsonable(parameters),
        probe_parameters=_jsonable(probe_parameters),
        target=selector,
        limits=limits,
        names={h.id: h.name for h in hosts},
        batches=batches,
        batch=0,
        phase="run",
        commands=[],
        probes=[],
        done=[],
        pending="",
        pending_probe="",
    )
    await ctx.save(detail=f"{len(hosts)} host(s) in {len(batches)} batch(es): {', '.join(map(str, sizes))}")


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


async def _authorize(
    ctx: StepContext, name: str, doc: documents.Document, hosts: list[Host], probe: HealthProbe | None
) -> None:
    """The starter may run the document (and a command probe) on every host, now; audited either way."""
    starter, roles = await ctx.services.acting.roles_of(ctx.execution.started_by, STARTER_HINT)
    decision = decide(roles, document_choices(name, doc, ""), hosts, user=starter)
    if decision and probe is not None and probe.command:
        # A probe command is a command, run as the agent's own account: it needs command.run as root.
        decision = decide(roles, [("command.run", "", None)], hosts, user=starter)
    await ctx.audit("automation.step", "ok" if decision else "denied", {"authz": [decision.to_audit()]})
    if not decision:
        raise PermissionDenied(decision.message, decision.hint)


async def _ensure_command(ctx: StepContext, key: str, create: Any, host_ids: list[str]) -> Command | StepResult:
    """The command whose id ``state[key]`` holds, created now when it does not exist yet, waited
    for to its end; a StepResult when it cannot be created."""
    command_id = ctx.state.get(key) or ""
    if not command_id:
        command_id = new_command_id()
        ctx.state[key] = command_id
        await ctx.save()
    try:
        await ctx.services.commands.command(command_id)
    except NotFound:
        try:
            await create(command_id, Target(hosts=tuple(host_ids)))
        except FleetopsError as exc:
            ctx.state[key] = ""
            await ctx.save()
            return _failed(f"could not start {command_id}: {exc.message}", await _outputs(ctx))
    return await _wait(ctx, command_id)


async def _wait(ctx: StepContext, command_id: str) -> Command:
    """The command, once it has ended (a cancel of the execution cancels it, then raises)."""
    try:
        while True:
            command = await ctx.services.commands.command(command_id)
            if command.status is not CommandStatus.IN_PROGRESS:
                return command
            await ctx.pause(1.0)
    except Cancelled:
        try:
            await ctx.services.commands.cancel(command_id)
        except FleetopsError:
            pass  # it ended meanwhile
        raise


async def _start_run(ctx: StepContext, target: Target, command_id: str) -> None:
    info, doc = await ctx.services.documents.resolve(ctx.state["document"])
    values = doc.resolve(ctx.state["parameters"])
    starter, roles = await ctx.services.acting.roles_of(ctx.execution.started_by, STARTER_HINT)

    def authorize(hosts: list[Host], action: str, login: str | None) -> None:
        decide(roles, document_choices(info.name, doc, ""), hosts, user=starter).check()

    await start_document_run(
        ctx.services.commands,
        ctx.services.patching,
        ctx.actor,
        target,
        info,
        doc,
        values,
        RunOptions(comment=f"automation {ctx.execution.id} step {ctx.record.name}", **ctx.state.get("limits", {})),
        authorize=authorize,
        command_id=command_id,
    )


async def _start_probe(ctx: StepContext, probe: HealthProbe, target: Target, command_id: str) -> None:
    comment = f"automation {ctx.execution.id} step {ctx.record.name} health probe"
    if probe.document:
        reference = probe.document + (f":{probe.version}" if probe.version else "")
        info, doc = await ctx.services.documents.resolve(reference)
        values = doc.resolve(ctx.state.get("probe_parameters", {}))
        starter, roles = await ctx.services.acting.roles_of(ctx.execution.started_by, STARTER_HINT)

        def authorize(hosts: list[Host], action: str, login: str | None) -> None:
            decide(roles, document_choices(info.name, doc, ""), hosts, user=starter).check()

        await start_document_run(
            ctx.services.commands,
            ctx.services.patching,
            ctx.actor,
            target,
            info,
            doc,
            values,
            RunOptions(comment=comment),
            authorize=authorize,
            command_id=command_id,
        )
        return
    if probe.command:
        spec = CommandSpec(argv=tuple(probe.command), comment=comment, timeout_seconds=300)
    else:
        url = render(probe.url, ctx.template_context)
        spec = CommandSpec(
            script=URL_PROBE_SHELL.encode(),
            windows_script=URL_PROBE_POWERSHELL.encode(),
            env={"FLEETOPS_PROBE_URL": url},
            comment=comment,
            timeout_seconds=60,
        )
    await ctx.services.commands.create(ctx.actor, target, spec, command_id=command_id)


def _counts(command: Command) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(command.counts.items()) if n)
    return f"{command.status.value} ({counts})" if counts else command.status.value


async def _outputs(ctx: StepContext) -> dict[str, Any]:
    """status is set by the caller; succeeded/failed count hosts; stdout is the first success's."""
    names: dict[str, str] = ctx.state.get("names", {})
    done: list[str] = ctx.state.get("done", [])
    failed = 0
    if failed_command := ctx.state.get("failed_command"):
        _, invocations = await ctx.services.commands.view(failed_command, tails=False)
        failed = sum(1 for i in invocations if i.exit_code != 0)
    stdout = ""
    commands: list[str] = ctx.state.get("commands", [])
    if commands:
        _, invocations = await ctx.services.commands.view(commands[0], tails=True)
        ok = [i for i in invocations if i.exit_code == 0]
        if ok:
            stdout = ok[0].stdout_tail[-STDOUT_OUTPUT_BYTES:].decode(errors="replace").strip()
    return {
        "succeeded": len(done),
        "failed": failed,
        "hosts": ",".join(names.get(h, h) for h in done),
        "commands": ",".join([*commands, *ctx.state.get("probes", [])]),
        "stdout": stdout,
    }
