"""``opsctl patch``'s output: compliance tables, a host's findings, baselines and patch groups.

Text for people; the few ``-o json`` documents that are not a message as it came
(:func:`operation_doc`, :func:`baseline_doc`) are built here too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from fleetops.common.patching import ComplianceLevel, Severity
from fleetops.opsctl import command, output
from fleetops.v1 import operator_pb2

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
#: Worst first (the shared vocabulary declares them least severe first).
SEVERITY_ORDER = tuple(s.value for s in reversed(Severity))
LEVEL_ORDER = tuple(level.value for level in reversed(ComplianceLevel))
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
    if count > undated and output.is_set(next_approval_at):
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
    if h.pending_approval > h.pending_undated and output.is_set(h.next_approval_at):
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
            output.when(u.approved_at) if output.is_set(u.approved_at) else "no rule",
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


def describe(doc: dict[str, Any]) -> str:
    """``linux, 2 rules, 3 approved, 1 rejected, default``."""
    parts = [str(doc.get("os_family") or "?"), output.plural(len(doc.get("rules") or []), "rule")]
    parts.append(f"{len(doc.get('approved_patches') or [])} approved")
    parts.append(f"{len(doc.get('rejected_patches') or [])} rejected")
    if doc.get("is_default"):
        parts.append("default")
    return ", ".join(parts)


def note_if_empty(doc: dict[str, Any]) -> None:
    """On stderr: a baseline without rules and approved patches approves nothing."""
    if not doc.get("rules") and not doc.get("approved_patches"):
        print(
            f"note: baseline {doc.get('name')} has no approval rules and no approved patches: it approves nothing "
            "(add a rule with --classification/--severity/--approve-after-days, or --approve PATTERN)",
            file=sys.stderr,
        )


def lenient_document(b: operator_pb2.PatchBaseline) -> dict[str, Any] | None:
    """The baseline's document for showing it; None when the controller sent one that is not a JSON mapping."""
    try:
        doc = json.loads(b.document_json)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def baseline_doc(b: operator_pb2.PatchBaseline) -> dict[str, Any]:
    """``-o json`` of a baseline: its record with the document parsed (``document``, not ``document_json``)."""
    doc = output.message_dict(b)
    doc.pop("document_json", None)
    doc["document"] = lenient_document(b)
    return doc


def rule_text(rule: Any) -> str:
    if not isinstance(rule, dict):
        return str(rule)
    classes = ",".join(rule.get("classifications") or []) or "any classification"
    sevs = ",".join(rule.get("severities") or []) or "any severity"
    days = rule.get("approve_after_days", 7)
    level = rule.get("compliance_level")
    return f"{classes} / {sevs}, after {output.plural(days, 'day')}" + (f", level {level}" if level else "")


# ---- one command's text output each -----------------------------------------------------------


def print_operation(
    detail: operator_pb2.CommandDetail, result: operator_pb2.PatchComplianceResponse, out: TextIO | None = None
) -> None:
    """After a scan or an install: each host's result (no stdout), the command's summary, the compliance after it."""
    out = out or sys.stdout
    # The agent task writes its machine-readable report on stdout: show states, reasons and stderr only.
    command.print_grouped(list(detail.invocations), out, stdout=False)
    print(command.summary(detail), file=out)
    print(file=out)
    print_fleet(result, out)


def print_baseline_saved(
    verb: str, b: operator_pb2.PatchBaseline, name: str, sent: dict[str, Any], out: TextIO | None = None
) -> None:
    """After ``baseline create`` / ``baseline update`` (*verb*): the stored baseline, else the *sent* document."""
    print(f"{verb} baseline {b.name or name} ({describe(lenient_document(b) or sent)})", file=out or sys.stdout)


def print_baselines(baselines: Sequence[operator_pb2.PatchBaseline], out: TextIO | None = None) -> None:
    """``baseline list``: one row per baseline, by name."""
    out = out or sys.stdout
    rows = []
    for b in sorted(baselines, key=lambda b: b.name):
        doc = lenient_document(b) or {}
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
    output.table(["NAME", "OS", "DEFAULT", "BUILT-IN", "RULES", "APPROVED", "REJECTED", "UPDATED", "BY"], rows, out)
    if not baselines:
        print("(no baselines)", file=out)


def print_baseline(b: operator_pb2.PatchBaseline, doc: dict[str, Any], out: TextIO | None = None) -> None:
    """``baseline show``: the record *b* and its document *doc*, field by field, then its rules."""
    out = out or sys.stdout
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
        print(f"{key:<{width}}  {value}", file=out)
    rules = doc.get("rules") or []
    print("rules:" if rules else "rules:  none (only the approved list approves)", file=out)
    for i, rule in enumerate(rules, 1):
        print(f"  {i}. {rule_text(rule)}", file=out)


def print_baseline_yaml(doc: dict[str, Any], out: TextIO | None = None) -> None:
    """``baseline show -o yaml``: the document as a file ``--file`` takes back."""
    import yaml  # only for -o yaml: it costs every other command its import time

    (out or sys.stdout).write(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))


def print_groups(groups: Sequence[operator_pb2.PatchGroup], out: TextIO | None = None) -> None:
    """``group list``: the lowest priority (the one that wins) first."""
    out = out or sys.stdout
    ordered = sorted(groups, key=lambda g: (g.priority or 100, g.name, g.baseline))
    rows = [[g.name, str(g.priority or 100), g.baseline, g.selector] for g in ordered]
    output.table(["GROUP", "PRIORITY", "BASELINE", "SELECTOR"], rows, out)
    if not groups:
        print("(no patch groups: every host uses its OS family's default baseline)", file=out)
