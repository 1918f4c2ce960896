"""``opsctl patch``: scans, installs, compliance, baselines and patch groups (docs/patching.md).

Scans and installs are commands (agent tasks ``patch.scan``/``patch.install``): they are followed
like ``opsctl run`` (progress bar, grouped results, exit status) and end with the compliance of the
hosts they targeted. Baselines are JSON documents on the wire; operators write them as YAML or JSON
files, or with flags, and opsctl checks them with the controller's own model before sending them,
so a mistake is reported with the file and field it is in.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from fleetops.common.errors import Conflict, InternalError, InvalidInput
from fleetops.common.selectors import Selector
from fleetops.opsctl import command, output
from fleetops.opsctl.client import OperatorClient
from fleetops.opsctl.hosts import add_target_arguments
from fleetops.v1 import operator_pb2

OS_FAMILIES = ("linux", "windows", "darwin")
REBOOT_CHOICES = ("if-needed", "never")
REJECTED_ACTIONS = ("block", "allow-as-dependency")
BASELINE_HINT = "see docs/patching.md#baselines for the fields; opsctl patch baseline show NAME -o yaml shows one"

#: Host statuses, worst first, and how they are written for people.
STATUS_ORDER = ("non_compliant", "not_scanned", "compliant")
STATUS_WORDS = {"compliant": "compliant", "non_compliant": "non-compliant", "not_scanned": "not scanned"}
#: Finding states: the non-compliant ones first (docs/patching.md#patch-states-and-compliance).
STATE_ORDER = (
    "failed",
    "missing",
    "installed_rejected",
    "installed_pending_reboot",
    "installed",
    "not_applicable",
    "installed_other",
)
NON_COMPLIANT_STATES = frozenset(STATE_ORDER[:4])
#: Worst first.
SEVERITY_ORDER = ("critical", "important", "moderate", "low", "unspecified")
LEVEL_ORDER = ("critical", "high", "medium", "low", "informational", "unspecified")
#: The count columns of the compliance tables: heading -> finding state.
COUNT_COLUMNS = (
    ("MISSING", "missing"),
    ("FAILED", "failed"),
    ("PENDING-REBOOT", "installed_pending_reboot"),
    ("REJECTED", "installed_rejected"),
    ("INSTALLED", "installed"),
    ("OTHER", "installed_other"),
)
DETAIL_WIDTH = 60
#: Updates pending approval listed in one host's view without --all-findings (the soonest approved first).
PENDING_ROWS = 20


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    patch = sub.add_parser(
        "patch",
        help="patch scans, installs, compliance, baselines and patch groups",
        description="Patch management after AWS Patch Manager (docs/patching.md): scan hosts, install "
        "approved patches, see compliance, and manage the baselines that say what is approved.",
    )
    psub = patch.add_subparsers(dest="patch_command", required=True)

    for verb in ("scan", "install"):
        p = psub.add_parser(
            verb,
            help="scan hosts for missing patches" if verb == "scan" else "install the approved patches on hosts",
            description=(
                "Scan the targeted hosts' packages against their baselines, then show their compliance."
                if verb == "scan"
                else "Install the patches the hosts' baselines approve (fixed when the operation starts), "
                "rebooting where needed, then show their compliance."
            ),
        )
        add_target_arguments(p, required=True)
        if verb == "install":
            p.add_argument(
                "--reboot",
                choices=REBOOT_CHOICES,
                default="if-needed",
                help="reboot hosts whose patches need it (default if-needed)",
            )
        p.add_argument("--max-concurrency", default="", help="hosts at a time: a count or a percentage (default 50)")
        p.add_argument("--max-errors", default="", help="stop after this many failed hosts: count or %% (default 0)")
        p.add_argument("--timeout", default=None, metavar="DURATION", help="per host, e.g. 30m (default 1h)")
        p.add_argument("--no-refresh", action="store_true", help="do not refresh the package index before scanning")
        p.add_argument("--comment", default="")
        p.add_argument("--detach", action="store_true", help="print the command id and return; see opsctl run watch")
        output.add_output_argument(p)
        p.set_defaults(func=scan if verb == "scan" else install)

    p = psub.add_parser(
        "compliance",
        help="patch compliance of the fleet, or of one host (--host NAME) with its findings",
        description="Without a target: every host. With exactly one --host: that host's findings and history.",
    )
    add_target_arguments(p, required=False)
    p.add_argument(
        "--all-findings",
        action="store_true",
        help="one host: also list every installed_other package and every update pending approval",
    )
    output.add_output_argument(p)
    p.set_defaults(func=compliance)

    baseline = psub.add_parser("baseline", help="patch baselines: which patches hosts should have")
    bsub = baseline.add_subparsers(dest="baseline_command", required=True)
    p = bsub.add_parser(
        "create",
        help="create a baseline from a YAML/JSON file and/or flags",
        description="Create a baseline. The rule flags (--classification, --severity, --approve-after-days) "
        "make one approval rule; a --file can hold several. Flags change what the file says.",
    )
    p.add_argument("name")
    _add_document_flags(p, update=False)
    p.set_defaults(func=create_baseline)
    p = bsub.add_parser("list", help="stored and built-in baselines")
    output.add_output_argument(p)
    p.set_defaults(func=list_baselines)
    p = bsub.add_parser("show", help="one baseline (-o yaml writes a file for --file)")
    p.add_argument("name")
    output.add_output_argument(p, extra=("yaml",))
    p.set_defaults(func=show_baseline)
    p = bsub.add_parser(
        "update",
        help="change a baseline: --file replaces its document, flags change fields",
        description="Change a baseline. --file replaces the whole document; flags change single fields "
        "(--approve/--reject add patterns, --unapprove/--unreject remove them).",
    )
    p.add_argument("name")
    _add_document_flags(p, update=True)
    p.set_defaults(func=update_baseline)
    p = bsub.add_parser("delete", help="delete a stored baseline")
    p.add_argument("name")
    p.set_defaults(func=delete_baseline)
    p = bsub.add_parser(
        "assign",
        help="register a patch group: hosts matching a selector use this baseline",
        description="Hosts whose tags match --target use baseline NAME; among matching groups of a host's OS "
        "family the lowest --priority wins.",
    )
    p.add_argument("name", metavar="NAME", help="the baseline")
    p.add_argument("--group", required=True, help="the patch group's name")
    p.add_argument("--target", "-t", required=True, metavar="SELECTOR", help="tag selector, e.g. 'env=prod,role=web'")
    p.add_argument("--priority", type=int, default=None, help="the lowest number wins (default 100)")
    p.set_defaults(func=assign_baseline)

    group = psub.add_parser("group", help="patch groups: which hosts use which baseline")
    gsub = group.add_subparsers(dest="group_command", required=True)
    p = gsub.add_parser("list", help="registered patch groups")
    output.add_output_argument(p)
    p.set_defaults(func=list_groups)
    p = gsub.add_parser("delete", help="unregister a patch group (its hosts fall back to other groups or defaults)")
    p.add_argument("group")
    p.set_defaults(func=delete_group)


def _add_document_flags(p: argparse.ArgumentParser, *, update: bool) -> None:
    p.add_argument("--file", "-f", metavar="FILE", help="a YAML or JSON baseline document ('-': standard input)")
    p.add_argument("--os", choices=OS_FAMILIES, help="the OS family the baseline is for")
    p.add_argument("--description", default=None, metavar="TEXT")
    p.add_argument(
        "--classification",
        default=None,
        metavar="LIST",
        help="rule: classifications, comma-separated (security,bugfix,enhancement,other; 'any')",
    )
    p.add_argument(
        "--severity",
        default=None,
        metavar="LIST",
        help="rule: vendor severities, comma-separated (critical,important,moderate,low,unspecified; 'any')",
    )
    p.add_argument("--approve-after-days", type=int, default=None, metavar="N", help="rule: days after release (0-360)")
    p.add_argument(
        "--compliance-level",
        default=None,
        metavar="LEVEL",
        help="level of approved patches and rules (critical,high,medium,low,informational,unspecified)",
    )
    p.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="PATTERN",
        help="add a pattern to the approved list (repeatable)",
    )
    p.add_argument(
        "--reject",
        action="append",
        default=[],
        metavar="PATTERN",
        help="add a pattern to the rejected list (repeatable)",
    )
    if update:
        p.add_argument("--unapprove", action="append", default=[], metavar="PATTERN", help="drop an approved pattern")
        p.add_argument("--unreject", action="append", default=[], metavar="PATTERN", help="drop a rejected pattern")
    p.add_argument("--rejected-action", choices=REJECTED_ACTIONS, default=None)
    p.add_argument(
        "--default",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the default baseline of its OS family",
    )


# ---- scan and install -------------------------------------------------------------------------


def check_target(args: argparse.Namespace) -> None:
    """Exactly one of --target, --host or --all: an operation never means "every host" by omission."""
    given = sum(bool(x) for x in (args.target, args.host, args.all))
    if given == 0:
        raise InvalidInput(
            "no target given", "give --target SELECTOR, --host NAME (repeatable) or --all to target every host"
        )
    if given > 1:
        raise InvalidInput(
            "give only one of --target, --host or --all",
            "combine conditions inside the selector instead, e.g. env=prod,role=web",
        )


def operation_request(args: argparse.Namespace, *, install: bool) -> operator_pb2.PatchOperationRequest:
    check_target(args)
    reboot = getattr(args, "reboot", None) or "if-needed"
    if install and reboot not in REBOOT_CHOICES:
        raise InvalidInput(f"bad --reboot {reboot!r}", "use --reboot if-needed or --reboot never")
    return operator_pb2.PatchOperationRequest(
        target=operator_pb2.Target(selector=args.target, hosts=args.host, all=args.all),
        max_concurrency=args.max_concurrency,
        max_errors=args.max_errors,
        reboot=reboot if install else "",
        timeout_seconds=command.positive_seconds(args.timeout, "--timeout") if args.timeout else 0,
        no_refresh=args.no_refresh,
        comment=args.comment,
    )


def scan(client: OperatorClient, args: argparse.Namespace) -> int:
    return _operation(client, args, install=False)


def install(client: OperatorClient, args: argparse.Namespace) -> int:
    return _operation(client, args, install=True)


def _operation(client: OperatorClient, args: argparse.Namespace, *, install: bool) -> int:
    request = operation_request(args, install=install)
    response = client.install_patches(request) if install else client.scan_patches(request)
    info = command.announce(response, args.output)
    command_id = response.command.id
    if args.detach:
        print(command_id)
        return 0
    print(f"command {command_id} ({'install' if install else 'scan'})", file=info, flush=True)
    if not command.wait(client, command_id, args.output):
        return 130
    detail = client.get_command(command_id, include_output=True)
    status = command.exit_status(detail)
    result = client.patch_compliance(selector=args.target, hosts=args.host, all_hosts=args.all)
    if args.output == "json":
        print(json.dumps(operation_doc(detail, result), indent=2, sort_keys=True))
    else:
        # The agent task writes its machine-readable report on stdout: show states, reasons and stderr only.
        command.print_grouped(list(detail.invocations), sys.stdout, stdout=False)
        print(command.summary(detail))
        print()
        print_fleet(result, sys.stdout)
    return status


def operation_doc(detail: operator_pb2.CommandDetail, result: operator_pb2.PatchComplianceResponse) -> dict[str, Any]:
    """``-o json`` of scan/install: the command, one record per host (no stdout), the compliance after it."""
    invocations = []
    for inv in detail.invocations:
        doc = command.invocation_doc(inv)
        doc.pop("stdout", None)
        invocations.append(doc)
    return {
        "command": output.message_dict(detail.command),
        "invocations": invocations,
        "compliance": output.message_dict(result),
    }


# ---- compliance -------------------------------------------------------------------------------


def compliance(client: OperatorClient, args: argparse.Namespace) -> int:
    one_host = len(args.host) == 1 and not args.target and not args.all
    if one_host:
        result = client.patch_compliance(host=args.host[0])
    else:
        result = client.patch_compliance(selector=args.target, hosts=args.host, all_hosts=args.all)
    if args.output == "json":
        output.as_json(result, sys.stdout)
    elif one_host:
        print_host(result, args.host[0], sys.stdout, all_findings=args.all_findings)
    else:
        print_fleet(result, sys.stdout)
    return 0


def fleet_counts(result: operator_pb2.PatchComplianceResponse) -> tuple[int, int, int]:
    """(compliant, non-compliant, not scanned): the controller's totals, else counted from the hosts."""
    totals = (result.compliant, result.non_compliant, result.not_scanned)
    if sum(totals) or not result.hosts:
        return totals
    statuses = [h.status for h in result.hosts]
    return statuses.count("compliant"), statuses.count("non_compliant"), statuses.count("not_scanned")


def missing_line(missing_by_severity: Any) -> str:
    """``missing: 2 critical, 1 important`` (worst first; 'none' when nothing is missing)."""
    counts = dict(missing_by_severity)
    order = [s for s in SEVERITY_ORDER if s in counts] + sorted(s for s in counts if s not in SEVERITY_ORDER)
    parts = [f"{counts[s]} {s}" for s in order if counts[s]]
    return "missing: " + (", ".join(parts) or "none")


def summary_line(result: operator_pb2.PatchComplianceResponse) -> str:
    compliant, non_compliant, not_scanned = fleet_counts(result)
    total = compliant + non_compliant + not_scanned
    hosts = output.plural(total, "host")
    return f"{hosts}: {compliant} compliant, {non_compliant} non-compliant, {not_scanned} not scanned"


def _is_set(ts: Any) -> bool:
    return bool(ts.seconds or ts.nanos)


def _day(ts: Any) -> str:
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d")


def _them(n: int) -> str:
    return "it" if n == 1 else "them"


def pending_text(count: int, undated: int, next_approval_at: Any) -> str:
    """``3 (next approved 2025-11-27 14:03:00Z, in 6d; 1 not approved by any rule)``; 'none' when 0.

    The counts are those of the report: when the next approval date has passed since, the update
    is approved now but counted as missing only by the next scan, and the text says so.
    """
    if not count:
        return "none"
    parts = []
    if count > undated and _is_set(next_approval_at):
        when = f"next approved {output.when(next_approval_at)}, {output.ago(next_approval_at)}"
        if next_approval_at.ToDatetime(tzinfo=UTC) <= datetime.now(UTC):
            when += f" (since the scan: scan again to count {_them(count - undated)} as missing)"
        parts.append(when)
    if undated == count:
        parts.append(f"no rule approves {_them(count)}")
    elif undated:
        parts.append(f"{undated} not approved by any rule")
    return f"{count} ({'; '.join(parts)})" if parts else str(count)


def host_pending_line(h: operator_pb2.HostPatchCompliance) -> str | None:
    """``pending approval: ...`` for one host's latest report; None when it was never scanned."""
    if h.status == "not_scanned":
        return None
    if not h.HasField("pending_approval"):
        return "pending approval: unknown (the report predates this count: scan again)"
    return "pending approval: " + pending_text(h.pending_approval, h.pending_undated, h.next_approval_at)


def fleet_pending_line(result: operator_pb2.PatchComplianceResponse) -> str:
    """``pending approval: 144 on 2 hosts (next approved ...; 132 not approved by any rule)``."""
    text = pending_text(result.pending_approval, result.pending_undated, result.next_approval_at)
    if result.pending_approval:
        count, _, rest = text.partition(" ")
        text = f"{count} on {output.plural(result.pending_approval_hosts, 'host')}" + (f" {rest}" if rest else "")
    unknown = sum(1 for h in result.hosts if h.status != "not_scanned" and not h.HasField("pending_approval"))
    if unknown:
        text += f"; unknown for {output.plural(unknown, 'host')} scanned before this count existed"
    return "pending approval: " + text


def _pending_cell(h: operator_pb2.HostPatchCompliance) -> str:
    if h.status == "not_scanned":
        return "-"
    if not h.HasField("pending_approval"):
        return "?"
    if h.pending_approval > h.pending_undated and _is_set(h.next_approval_at):
        return f"{h.pending_approval}, next {_day(h.next_approval_at)}"
    return str(h.pending_approval)


def _rank(order: Sequence[str], value: str) -> int:
    return order.index(value) if value in order else len(order)


def status_text(h: operator_pb2.HostPatchCompliance) -> str:
    text = STATUS_WORDS.get(h.status, h.status or "?")
    if h.status == "non_compliant" and h.highest_level and h.highest_level != "unspecified":
        text += f" ({h.highest_level})"
    return text


def _count_cells(h: operator_pb2.HostPatchCompliance) -> list[str]:
    if h.status == "not_scanned" and not h.counts:
        return ["-"] * len(COUNT_COLUMNS)
    return [str(h.counts.get(state, 0)) for _, state in COUNT_COLUMNS]


def host_rows(hosts: Sequence[operator_pb2.HostPatchCompliance]) -> list[list[str]]:
    """Rows of the fleet table: non-compliant hosts first (worst level first), then not scanned, then compliant."""
    ordered = sorted(
        hosts,
        key=lambda h: (_rank(STATUS_ORDER, h.status), _rank(LEVEL_ORDER, h.highest_level), h.host_name or h.host_id),
    )
    return [
        [
            h.host_name or h.host_id,
            status_text(h),
            h.baseline or "-",
            *_count_cells(h),
            _pending_cell(h),
            output.ago(h.scanned_at),
            h.operation or "-",
        ]
        for h in ordered
    ]


def print_fleet(result: operator_pb2.PatchComplianceResponse, out: TextIO) -> None:
    print(summary_line(result), file=out)
    print(missing_line(result.missing_by_severity), file=out)
    if not result.hosts:
        print("(no hosts match)", file=out)
        return
    print(fleet_pending_line(result), file=out)
    print(file=out)
    headers = [
        "HOST",
        "STATUS",
        "BASELINE",
        *(c for c, _ in COUNT_COLUMNS),
        "PENDING-APPROVAL",
        "SCANNED",
        "OPERATION",
    ]
    output.table(headers, host_rows(result.hosts), out)


def finding_key(f: operator_pb2.PatchFinding) -> tuple[Any, ...]:
    """Non-compliant findings first, worst compliance level and severity first; then the others by state."""
    if f.state in NON_COMPLIANT_STATES:
        return (
            0,
            _rank(LEVEL_ORDER, f.compliance_level),
            _rank(SEVERITY_ORDER, f.severity),
            _rank(STATE_ORDER, f.state),
            f.name,
            f.arch,
        )
    return (1, _rank(STATE_ORDER, f.state), 0, 0, f.name, f.arch)


def sorted_findings(findings: Sequence[operator_pb2.PatchFinding]) -> list[operator_pb2.PatchFinding]:
    return sorted(findings, key=finding_key)


def host_line(h: operator_pb2.HostPatchCompliance) -> str:
    parts = [f"{h.host_name or h.host_id}: {status_text(h)}"]
    baseline = h.baseline or "-"
    parts.append(f"baseline {baseline}" + (f" (patch group {h.patch_group})" if h.patch_group else ""))
    if h.os_family:
        parts.append(h.os_family + (f"/{h.provider}" if h.provider else ""))
    if h.scanned_at.seconds or h.scanned_at.nanos:
        scanned = f"scanned {output.when(h.scanned_at)} ({output.ago(h.scanned_at)})"
        if h.operation:
            scanned += f" by {h.operation}" + (f" {h.command_id}" if h.command_id else "")
        parts.append(scanned)
    if h.reboot_pending:
        parts.append("reboot pending")
    return ", ".join(parts)


def print_host(result: operator_pb2.PatchComplianceResponse, name: str, out: TextIO, *, all_findings: bool) -> None:
    if not result.hosts:
        print(f"{name}: no compliance record", file=out)
        return
    h = result.hosts[0]
    print(host_line(h), file=out)
    print(missing_line(h.missing_by_severity or result.missing_by_severity), file=out)
    pending = host_pending_line(h)
    if pending:
        print(pending, file=out)
    findings = sorted_findings(result.findings)
    hidden = 0
    if not all_findings:
        hidden = sum(1 for f in findings if f.state == "installed_other")
        findings = [f for f in findings if f.state != "installed_other"]
    print(file=out)
    if findings:
        with_detail = any(f.detail for f in findings)
        headers = ["NAME", "STATE", "INSTALLED", "CANDIDATE", "CLASSIFICATION", "SEVERITY", "LEVEL"]
        rows = []
        for f in findings:
            row = [
                f.name + (f".{f.arch}" if f.arch else ""),
                f.state,
                f.installed_version or "-",
                f.candidate_version or "-",
                f.classification or "-",
                f.severity or "-",
                f.compliance_level or "-",
            ]
            if with_detail:
                row.append(_clip(f.detail) or "-")
            rows.append(row)
        output.table([*headers, "DETAIL"] if with_detail else headers, rows, out)
    else:
        print("(no findings)", file=out)
    if hidden:
        print(f"({output.plural(hidden, 'other installed package')} not listed; --all-findings lists them)", file=out)
    if result.pending_updates:
        print(file=out)
        print_pending_updates(result.pending_updates, out, all_rows=all_findings)
    print(file=out)
    if not result.history:
        print("history: no earlier reports", file=out)
        return
    print("history (newest first):", file=out)
    rows = [
        [
            output.when(r.scanned_at),
            r.operation or "-",
            status_text(r),
            *_count_cells(r),
            r.baseline or "-",
            r.command_id or "-",
        ]
        for r in result.history
    ]
    output.table(["TIME", "OPERATION", "STATUS", *(c for c, _ in COUNT_COLUMNS), "BASELINE", "COMMAND"], rows, out)


def print_pending_updates(updates: Sequence[operator_pb2.PendingUpdate], out: TextIO, *, all_rows: bool) -> None:
    """The offered updates the baseline does not approve yet, the soonest approved first (as sent)."""
    shown = list(updates) if all_rows else list(updates)[:PENDING_ROWS]
    print(f"pending approval ({len(updates)}, the soonest approved first):", file=out)
    rows = [
        [
            u.name + (f".{u.arch}" if u.arch else ""),
            u.installed_version or "-",
            u.candidate_version or "-",
            u.classification or "-",
            u.severity or "-",
            output.when(u.approved_at) if _is_set(u.approved_at) else "no rule",
            _clip(u.reason) or "-",
        ]
        for u in shown
    ]
    headers = ["NAME", "INSTALLED", "CANDIDATE", "CLASSIFICATION", "SEVERITY", "APPROVED-FROM", "WHY"]
    output.table(headers, rows, out)
    if len(shown) < len(updates):
        print(f"({len(updates) - len(shown)} more; --all-findings or -o json lists them)", file=out)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 3] + "..."


# ---- baseline documents -----------------------------------------------------------------------


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
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidInput(f"cannot read {where}: reading YAML needs PyYAML", "pip install pyyaml") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidInput(f"{where}: not valid YAML{at}: {problem}", BASELINE_HINT) from None


def validate_document(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """*doc* checked with the controller's model and in its canonical form; InvalidInput names *where*.

    Without the controller's package (an opsctl-only install) the document goes as it is and the
    controller checks it.
    """
    try:
        from fleetops.controller.patching.models import Baseline
    except ImportError:  # pragma: no cover - opsctl installed without the controller package
        return doc
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


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def describe(doc: dict[str, Any]) -> str:
    """``linux, 2 rules, 3 approved, 1 rejected, default``."""
    parts = [str(doc.get("os_family") or "?"), output.plural(len(doc.get("rules") or []), "rule")]
    parts.append(f"{len(doc.get('approved_patches') or [])} approved")
    parts.append(f"{len(doc.get('rejected_patches') or [])} rejected")
    if doc.get("is_default"):
        parts.append("default")
    return ", ".join(parts)


def _note_if_empty(doc: dict[str, Any]) -> None:
    if not doc.get("rules") and not doc.get("approved_patches"):
        print(
            f"note: baseline {doc.get('name')} has no approval rules and no approved patches: it approves nothing "
            "(add a rule with --classification/--severity/--approve-after-days, or --approve PATTERN)",
            file=sys.stderr,
        )


def create_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    doc = creation_document(args)
    _note_if_empty(doc)
    created = client.create_patch_baseline(args.name, _dump(doc))
    print(f"created baseline {created.name or args.name} ({describe(_lenient(created) or doc)})")
    return 0


def update_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    current = None if args.file or not document_flags_given(args) else client.get_patch_baseline(args.name)
    doc = update_document(args, current)
    _note_if_empty(doc)
    updated = client.update_patch_baseline(args.name, _dump(doc))
    print(f"updated baseline {updated.name or args.name} ({describe(_lenient(updated) or doc)})")
    return 0


def _lenient(b: operator_pb2.PatchBaseline) -> dict[str, Any] | None:
    try:
        doc = json.loads(b.document_json)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def baseline_doc(b: operator_pb2.PatchBaseline) -> dict[str, Any]:
    """``-o json`` of a baseline: its record with the document parsed (``document``, not ``document_json``)."""
    doc = output.message_dict(b)
    doc.pop("document_json", None)
    doc["document"] = _lenient(b)
    return doc


def list_baselines(client: OperatorClient, args: argparse.Namespace) -> int:
    baselines = client.list_patch_baselines()
    if args.output == "json":
        print(json.dumps([baseline_doc(b) for b in baselines], indent=2, sort_keys=True))
        return 0
    rows = []
    for b in sorted(baselines, key=lambda b: b.name):
        doc = _lenient(b) or {}
        rows.append(
            [
                b.name,
                str(doc.get("os_family") or "?"),
                "yes" if doc.get("is_default") else "-",
                "yes" if b.builtin else "-",
                str(len(doc.get("rules") or [])),
                str(len(doc.get("approved_patches") or [])),
                str(len(doc.get("rejected_patches") or [])),
                output.when(b.updated_at),
                b.updated_by or "-",
            ]
        )
    output.table(
        ["NAME", "OS", "DEFAULT", "BUILT-IN", "RULES", "APPROVED", "REJECTED", "UPDATED", "BY"], rows, sys.stdout
    )
    if not baselines:
        print("(no baselines)")
    return 0


def rule_text(rule: Any) -> str:
    if not isinstance(rule, dict):
        return str(rule)
    classes = ",".join(rule.get("classifications") or []) or "any classification"
    sevs = ",".join(rule.get("severities") or []) or "any severity"
    days = rule.get("approve_after_days", 7)
    level = rule.get("compliance_level")
    return f"{classes} / {sevs}, after {output.plural(days, 'day')}" + (f", level {level}" if level else "")


def show_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    b = client.get_patch_baseline(args.name)
    if args.output == "json":
        print(json.dumps(baseline_doc(b), indent=2, sort_keys=True))
        return 0
    doc = stored_document(b)
    if args.output == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
        return 0
    lines = [
        ("name", b.name),
        ("os family", str(doc.get("os_family") or "?")),
        ("description", str(doc.get("description") or "-")),
        ("default", "yes" if doc.get("is_default") else "no"),
        ("built-in", "yes (read-only)" if b.builtin else "no"),
        ("compliance level", str(doc.get("compliance_level") or "unspecified")),
        ("rejected action", str(doc.get("rejected_action") or "allow_as_dependency")),
        ("approved", ", ".join(map(str, doc.get("approved_patches") or [])) or "-"),
        ("rejected", ", ".join(map(str, doc.get("rejected_patches") or [])) or "-"),
    ]
    if b.updated_at.seconds or b.updated_by:
        lines.append(("updated", f"{output.when(b.updated_at)} by {b.updated_by or '?'}"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    rules = doc.get("rules") or []
    print("rules:" if rules else "rules:  none (only the approved list approves)")
    for i, rule in enumerate(rules, 1):
        print(f"  {i}. {rule_text(rule)}")
    return 0


def delete_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_patch_baseline(args.name)
    print(f"deleted baseline {args.name}")
    return 0


# ---- patch groups -----------------------------------------------------------------------------


def assign_baseline(client: OperatorClient, args: argparse.Namespace) -> int:
    if args.priority is not None and args.priority < 1:
        raise InvalidInput("--priority must be 1 or more", "the lowest number wins; without --priority a group has 100")
    Selector.parse(args.target)  # a bad selector is reported here, with a pointer to the bad character
    group = client.assign_patch_baseline(
        group=args.group, selector=args.target, baseline=args.name, priority=args.priority or 0
    )
    print(
        f"patch group {group.name}: hosts matching {group.selector!r} use baseline {group.baseline} "
        f"(priority {group.priority or 100})"
    )
    return 0


def list_groups(client: OperatorClient, args: argparse.Namespace) -> int:
    groups = client.list_patch_groups()
    if args.output == "json":
        output.as_json(groups, sys.stdout)
        return 0
    ordered = sorted(groups, key=lambda g: (g.priority or 100, g.name, g.baseline))
    rows = [[g.name, str(g.priority or 100), g.baseline, g.selector] for g in ordered]
    output.table(["GROUP", "PRIORITY", "BASELINE", "SELECTOR"], rows, sys.stdout)
    if not groups:
        print("(no patch groups: every host uses its OS family's default baseline)")
    return 0


def delete_group(client: OperatorClient, args: argparse.Namespace) -> int:
    client.delete_patch_group(args.group)
    print(f"deleted patch group {args.group}")
    return 0
