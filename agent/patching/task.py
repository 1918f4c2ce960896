"""``fleetops-agent patch scan|install``: the agent tasks behind `opsctl patch scan|install`.

The agent runs these as child processes of its own program (agent/commands/tasks.py), so they are
ordinary invocations: journaled, timed out, cancelled, their output captured. The request comes as
JSON in ``FLEETOPS_TASK_REQUEST``; the report (a ``fleetops.v1.PatchReport``: the scan, the install
outcomes, the reboot) is written to the file ``FLEETOPS_TASK_REPORT`` names and travels with the
invocation's result. stdout is for operators (``opsctl run output``): one line per install
outcome and a summary line. Run by hand (no ``FLEETOPS_TASK_REPORT``), only stdout is written.

An install applies only the patches its snapshot approved for this host's baseline, at the
approved version: a patch whose candidate moved on since the snapshot is reported failed, never
upgraded to the newer version. Exit codes: 0 done; 1 a patch failed; the platform's reboot code
(194 / 3010) when the reboot policy is ``if-needed`` and the install left a reboot pending (the
agent then reboots through its reboot interface and reports the result after it).

Settings for hosts and tests come from the agent's environment (``FLEETOPS_PATCH_*``, passed on by
the agent): ``FLEETOPS_PATCH_REBOOT_REQUIRED_FILE`` replaces ``/var/run/reboot-required`` for apt;
``FLEETOPS_PATCH_REFRESH=never`` never refreshes the package indexes (a host with its own mirror sync).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetops.agent.commands.tasks import REPORT_ENV, REQUEST_ENV
from fleetops.agent.patching.detect import detect_providers
from fleetops.agent.patching.interfaces import PatchProvider
from fleetops.agent.patching.models import InstallOutcome, ScanResult, Update
from fleetops.agent.patching.wire import report_to_proto, write_report
from fleetops.common.errors import FleetopsError, InvalidInput
from fleetops.common.patch_report import RebootState
from fleetops.v1 import patching_pb2

log = logging.getLogger(__name__)

REBOOT_POLICIES = ("if-needed", "never")
EXIT_FAILED = 1


def read_request(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The task's request from the environment (empty when run by hand).

    Raises:
        InvalidInput: the request is not a JSON object.
    """
    text = (environ if environ is not None else os.environ).get(REQUEST_ENV, "").strip()
    if not text:
        return {}
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"the patch request is not JSON: {exc}", "the controller sends it; upgrade both") from exc
    if not isinstance(request, dict):
        raise InvalidInput("the patch request must be a JSON object")
    return request


def providers_for(request: dict[str, Any], environ: dict[str, str] | None = None) -> list[PatchProvider]:
    """This host's providers, configured by the request (index refresh) and the environment."""
    env = environ if environ is not None else os.environ
    providers = detect_providers()
    # A host whose indexes are refreshed another way (a local mirror, cron) sets "never".
    refresh = bool(request.get("refresh", True)) and env.get("FLEETOPS_PATCH_REFRESH") != "never"
    for provider in providers:
        if hasattr(provider, "refresh"):
            provider.refresh = refresh
        marker = env.get("FLEETOPS_PATCH_REBOOT_REQUIRED_FILE")
        if marker and hasattr(provider, "reboot_required_path"):
            provider.reboot_required_path = Path(marker)
    return providers


async def scan_all(providers: list[PatchProvider]) -> ScanResult:
    """One scan of the host: every provider's packages and updates together (macOS: softwareupdate + Homebrew)."""
    results = [await provider.scan() for provider in providers]
    first = results[0]
    if len(results) == 1:
        return first
    return replace(
        first,
        provider="+".join(r.provider for r in results),
        installed=tuple(p for r in results for p in r.installed),
        updates=tuple(u for r in results for u in r.updates),
        reboot_pending=any(r.reboot_pending for r in results),
        reboot_reasons=tuple(reason for r in results for reason in r.reboot_reasons),
    )


def approved_for_host(request: dict[str, Any], host_id: str) -> list[dict[str, Any]]:
    """The snapshot's approved patches for this host's baseline.

    Raises:
        InvalidInput: the request does not name this host (a controller bug: nothing is installed).
    """
    baseline = (request.get("hosts") or {}).get(host_id)
    if baseline is None:
        raise InvalidInput(f"the install request has no baseline for host {host_id!r}", "retry the install")
    approved = (request.get("approved") or {}).get(baseline) or []
    return [p for p in approved if isinstance(p, dict) and isinstance(p.get("name"), str)]


async def install(
    request: dict[str, Any], providers: list[PatchProvider], host_id: str, reboot_exit_code: int
) -> tuple[patching_pb2.PatchReport, int]:
    """Install this host's approved patches; the report and the exit code."""
    policy = request.get("reboot") or "if-needed"
    if policy not in REBOOT_POLICIES:
        raise InvalidInput(f"unknown reboot policy {policy!r}", "use if-needed or never")
    approved = approved_for_host(request, host_id)
    offered: dict[str, tuple[int, Update]] = {}
    for index, provider in enumerate(providers):
        for update in (await provider.scan()).updates:
            offered.setdefault(update.name, (index, update))
    outcomes: list[InstallOutcome] = []
    by_provider: dict[int, list[str]] = {}
    chosen: set[str] = set()
    for patch in approved:
        name, version = patch["name"], str(patch.get("version") or "")
        if name in chosen:
            continue
        found = offered.get(name)
        if found is None:
            outcomes.append(InstallOutcome(name, "not_applicable", None, "not offered on this host"))
            continue
        index, update = found
        if version and update.candidate_version != version:
            message = f"approved version {version} is no longer offered (the candidate is {update.candidate_version})"
            outcomes.append(InstallOutcome(name, "failed", update.installed_version, message))
            continue
        chosen.add(name)
        by_provider.setdefault(index, []).append(name)
    for index, names in by_provider.items():
        log.info("installing %d approved patches with %s: %s", len(names), providers[index].name, " ".join(names))
        outcomes.extend(await providers[index].install(names))
    after = await scan_all([_no_refresh(p) for p in providers])
    installed = sum(o.state == "installed" for o in outcomes)
    failed = sum(o.state == "failed" for o in outcomes)
    reboot = RebootState.NOT_NEEDED
    code = EXIT_FAILED if failed else 0
    if after.reboot_pending:
        if policy == "never":
            reboot = RebootState.PENDING_POLICY_NEVER
        elif installed:
            reboot = RebootState.REQUESTED
            code = reboot_exit_code
        else:
            reboot = RebootState.PENDING_NOTHING_INSTALLED
    return report_to_proto("install", after, outcomes, reboot, at=datetime.now(UTC)), code


def _no_refresh(provider: PatchProvider) -> PatchProvider:
    if hasattr(provider, "refresh"):
        provider.refresh = False
    return provider


def main(operation: str) -> int:
    """Entry point of ``fleetops-agent patch scan|install`` (prints the report; errors on stderr)."""
    from fleetops.agent.commands.detect import current_platform

    try:
        request = read_request()
        providers = providers_for(request)
        if operation == "scan":
            report, code = report_to_proto("scan", asyncio.run(scan_all(providers))), 0
        else:
            host_id = os.environ.get("FLEETOPS_HOST_ID", "")
            report, code = asyncio.run(install(request, providers, host_id, current_platform(None).reboot_exit_code))
        destination = os.environ.get(REPORT_ENV, "")
        if destination:
            write_report(report, Path(destination))
    except FleetopsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: the patch report cannot be written: {exc}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.write(human_summary(report))
    sys.stdout.flush()
    return code


def human_summary(report: patching_pb2.PatchReport) -> str:
    """What an operator reads in ``opsctl run output``: each install outcome, then one summary line."""
    lines = [
        f"{o.status}: {o.name} {o.version}".rstrip() + (f" ({o.message})" if o.message else "") for o in report.outcomes
    ]
    offered = f"{len(report.scan.updates)} updates offered"
    if report.operation == "install":
        installed = sum(o.status == "installed" for o in report.outcomes)
        failed = sum(o.status == "failed" for o in report.outcomes)
        reboot = RebootState(report.reboot).describe
        lines.append(f"patch install: {installed} installed, {failed} failed; reboot {reboot}; {offered}")
    else:
        lines.append(f"patch scan: {offered}")
    return "".join(line + "\n" for line in lines)
