"""``opsctl patch``: the command line, baseline files and flags, requests, and compliance rendering on a fake client."""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.errors import Conflict, InvalidInput, SelectorError
from fleetops.opsctl import cli, output, patch, patch_render, patch_request
from fleetops.opsctl.cli import build_parser
from fleetops.v1 import operator_pb2 as pb


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def ts(seconds_ago: int) -> Timestamp:
    return Timestamp(seconds=int(time.time()) - seconds_ago)


# -- fakes -----------------------------------------------------------------------------------------


def host(name: str, status: str, **fields: Any) -> pb.HostPatchCompliance:
    base: dict[str, Any] = dict(host_id=f"id-{name}", host_name=name, status=status, baseline="prod-linux")
    if status != "not_scanned":
        base.update(scanned_at=ts(7200), operation="scan", command_id="c-9")
    base.update(fields)
    return pb.HostPatchCompliance(**base)


#: Nearly six days from now ("in 5d"): when a 7-day rule approves what was first seen yesterday.
SOON = ts(-6 * 86400 + 3600)
SOON_DAY = SOON.ToDatetime().strftime("%Y-%m-%d")
LATER = ts(-9 * 86400)

FLEET = pb.PatchComplianceResponse(
    hosts=[
        host(
            "web-1",
            "compliant",
            counts={"installed": 3, "installed_other": 200},
            pending_approval=144,
            pending_undated=132,
            next_approval_at=SOON,
        ),
        host(
            "db-1",
            "non_compliant",
            counts={"missing": 2, "failed": 1, "installed_other": 150},
            missing_by_severity={"critical": 1, "important": 1},
            highest_level="high",
            pending_approval=0,
        ),
        host("new-1", "not_scanned", baseline=""),
        host(
            "api-1",
            "non_compliant",
            counts={"missing": 1, "installed_rejected": 1},
            missing_by_severity={"critical": 1},
            highest_level="critical",
        ),
    ],
    compliant=1,
    non_compliant=2,
    not_scanned=1,
    missing_by_severity={"critical": 2, "important": 1, "moderate": 0},
    pending_approval=144,
    pending_undated=132,
    pending_approval_hosts=1,
    next_approval_at=SOON,
)


def finding(name: str, state: str, level: str = "unspecified", severity: str = "unspecified", **kw: Any) -> Any:
    return pb.PatchFinding(name=name, state=state, compliance_level=level, severity=severity, **kw)


ONE_HOST = pb.PatchComplianceResponse(
    hosts=[
        host(
            "db-1",
            "non_compliant",
            counts={"missing": 2, "failed": 1, "installed": 1, "installed_other": 2},
            missing_by_severity={"important": 1, "critical": 1},
            highest_level="critical",
            patch_group="databases",
            os_family="linux",
            provider="apt",
            reboot_pending=True,
            pending_approval=3,
            pending_undated=1,
            next_approval_at=SOON,
        )
    ],
    compliant=0,
    non_compliant=1,
    pending_approval=3,
    pending_undated=1,
    pending_approval_hosts=1,
    next_approval_at=SOON,
    pending_updates=[
        pb.PendingUpdate(
            name="curl",
            arch="amd64",
            installed_version="7.88",
            candidate_version="7.90",
            classification="security",
            severity="important",
            approved_at=SOON,
            reason=f"rule 1 approves it at {SOON.ToJsonString()}",
        ),
        pb.PendingUpdate(
            name="zlib", candidate_version="1.3", classification="bugfix", approved_at=LATER, reason="rule 2"
        ),
        pb.PendingUpdate(
            name="cowsay",
            candidate_version="3.04",
            classification="enhancement",
            reason="no approval rule or approved pattern matches",
        ),
    ],
    findings=[
        finding("zlib", "installed_other"),
        finding("bash", "installed_other"),
        finding("curl", "missing", "medium", "moderate", installed_version="7.88", candidate_version="7.89"),
        finding("nginx", "installed", "high", "important", installed_version="1.24"),
        finding("openssl", "missing", "critical", "critical", candidate_version="3.0.15", classification="security"),
        finding("libc6", "failed", "high", "important", candidate_version="2.36-9", detail="dpkg: error 1"),
        finding("vim", "not_applicable", "high"),
    ],
    history=[
        host("db-1", "non_compliant", counts={"missing": 3}, scanned_at=ts(86400), operation="install"),
        host("db-1", "compliant", counts={"installed_other": 2}, scanned_at=ts(172800), command_id="c-1"),
    ],
)

STORED = {
    "name": "prod-linux",
    "os_family": "linux",
    "description": "Production",
    "rules": [{"classifications": ["security"], "severities": ["critical"], "approve_after_days": 7}],
    "approved_patches": ["nginx"],
    "rejected_patches": ["telnet*"],
    "rejected_action": "block",
    "compliance_level": "high",
    "is_default": False,
}


class FakeClient:
    def __init__(
        self,
        *,
        states: tuple[int, ...] = (pb.INVOCATION_STATE_SUCCESS, pb.INVOCATION_STATE_SUCCESS),
        compliance: pb.PatchComplianceResponse = FLEET,
        stored: dict[str, Any] | None = None,
        builtin: bool = False,
    ) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.states = states
        self.compliance = compliance
        self.stored = STORED if stored is None else stored
        self.builtin = builtin

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    # scan/install -----------------------------------------------------------------------------
    def _start(self, kind: str, request: pb.PatchOperationRequest) -> pb.RunCommandResponse:
        self.calls.append((kind, request))
        command = pb.Command(id="c-42", total=len(self.states), status="in_progress", agent_task=f"patch.{kind}")
        return pb.RunCommandResponse(command=command, host_names=[f"h-{i}" for i in range(len(self.states))])

    def scan_patches(self, request: pb.PatchOperationRequest) -> pb.RunCommandResponse:
        return self._start("scan", request)

    def install_patches(self, request: pb.PatchOperationRequest) -> pb.RunCommandResponse:
        return self._start("install", request)

    def watch_command(self, command_id: str, include_output: bool = False) -> Iterator[pb.CommandDetail]:
        self.calls.append(("watch", command_id))
        total = len(self.states)
        yield pb.CommandDetail(command=pb.Command(id=command_id, total=total, counts={"running": total}))
        yield pb.CommandDetail(command=pb.Command(id=command_id, total=total, counts={"success": total}), done=True)

    def get_command(self, command_id: str, include_output: bool = True) -> pb.CommandDetail:
        self.calls.append(("get_command", command_id))
        failed = any(s != pb.INVOCATION_STATE_SUCCESS for s in self.states)
        invocations = [
            pb.Invocation(
                host_name=f"h-{i}",
                state=state,
                has_exit_code=True,
                exit_code=0 if state == pb.INVOCATION_STATE_SUCCESS else 1,
                stdout_tail=b'{"installed": ["SCAN-REPORT"]}',
                stdout_bytes=31,
                stderr_tail=b"" if state == pb.INVOCATION_STATE_SUCCESS else b"apt-get: lock held",
            )
            for i, state in enumerate(self.states)
        ]
        command = pb.Command(id=command_id, total=len(self.states), status="failed" if failed else "success")
        return pb.CommandDetail(command=command, invocations=invocations, done=True)

    def patch_compliance(self, **kw: Any) -> pb.PatchComplianceResponse:
        self.calls.append(("compliance", kw))
        return self.compliance

    # baselines and groups ------------------------------------------------------------------------
    def _record(self, name: str, doc: dict[str, Any]) -> pb.PatchBaseline:
        return pb.PatchBaseline(
            name=name, document_json=json.dumps(doc), builtin=self.builtin, updated_at=ts(60), updated_by="alice"
        )

    def create_patch_baseline(self, name: str, document_json: str) -> pb.PatchBaseline:
        self.calls.append(("create", (name, json.loads(document_json))))
        return pb.PatchBaseline(name=name, document_json=document_json)

    def update_patch_baseline(self, name: str, document_json: str) -> pb.PatchBaseline:
        self.calls.append(("update", (name, json.loads(document_json))))
        return pb.PatchBaseline(name=name, document_json=document_json)

    def get_patch_baseline(self, name: str) -> pb.PatchBaseline:
        self.calls.append(("get", name))
        return self._record(name, {**self.stored, "name": name})

    def list_patch_baselines(self) -> list[pb.PatchBaseline]:
        self.calls.append(("list", None))
        return [self._record("prod-linux", self.stored), self._record("b-bad", {})]

    def delete_patch_baseline(self, name: str) -> None:
        self.calls.append(("delete", name))

    def assign_patch_baseline(self, **kw: Any) -> pb.PatchGroup:
        self.calls.append(("assign", kw))
        return pb.PatchGroup(
            name=kw["group"], selector=kw["selector"], baseline=kw["baseline"], priority=kw["priority"]
        )

    def list_patch_groups(self) -> list[pb.PatchGroup]:
        return [
            pb.PatchGroup(name="web", selector="role=web", baseline="prod-linux", priority=0),
            pb.PatchGroup(name="db", selector="role=db", baseline="db-linux", priority=10),
        ]

    def delete_patch_group(self, name: str) -> None:
        self.calls.append(("delete_group", name))


def run(client: FakeClient, *argv: str) -> int:
    args = parse(*argv)
    return int(args.func(client, args))


def call(client: FakeClient, kind: str) -> Any:
    found = [arg for k, arg in client.calls if k == kind]
    assert len(found) == 1, client.calls
    return found[0]


# -- argv ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "func"),
    [
        (["patch", "scan", "--target", "env=prod"], patch.scan),
        (["patch", "install", "--all"], patch.install),
        (["patch", "compliance"], patch.compliance),
        (["patch", "compliance", "--host", "web-1", "-o", "json"], patch.compliance),
        (["patch", "baseline", "create", "b", "--os", "linux"], patch.create_baseline),
        (["patch", "baseline", "list", "-o", "json"], patch.list_baselines),
        (["patch", "baseline", "show", "b", "-o", "yaml"], patch.show_baseline),
        (["patch", "baseline", "update", "b", "--approve", "x"], patch.update_baseline),
        (["patch", "baseline", "delete", "b"], patch.delete_baseline),
        (["patch", "baseline", "assign", "b", "--group", "g", "--target", "role=web"], patch.assign_baseline),
        (["patch", "group", "list"], patch.list_groups),
        (["patch", "group", "delete", "g"], patch.delete_group),
    ],
)
def test_subcommands(argv: list[str], func: Any) -> None:
    assert parse(*argv).func is func


def test_scan_and_install_options() -> None:
    args = parse(
        "patch", "install", "-t", "env=prod", "--max-concurrency", "10%", "--max-errors", "2", "--timeout", "30m"
    )
    assert (args.target, args.max_concurrency, args.max_errors, args.timeout) == ("env=prod", "10%", "2", "30m")
    assert (args.reboot, args.detach, args.output, args.no_refresh) == ("if-needed", False, "text", False)
    args = parse("patch", "scan", "--host", "a", "--host", "b", "--no-refresh", "--detach", "-o", "json")
    assert (args.host, args.no_refresh, args.detach, args.output) == (["a", "b"], True, True, "json")
    assert not hasattr(args, "reboot")


def test_a_bad_reboot_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse("patch", "install", "--all", "--reboot", "always")
    assert caught.value.code == 2
    assert "--reboot" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("patch", "scan", "--all", "--reboot", "never")  # scans never reboot


def test_baseline_flags() -> None:
    args = parse(
        "patch", "baseline", "create", "prod", "--os", "linux", "--approve", "a", "--approve", "b", "--reject", "c",
        "--classification", "security,bugfix", "--severity", "critical", "--approve-after-days", "3",
        "--compliance-level", "high", "--rejected-action", "block", "--default", "--description", "Prod",
    )  # fmt: skip
    assert (args.name, args.os, args.approve, args.reject) == ("prod", "linux", ["a", "b"], ["c"])
    assert (args.classification, args.severity, args.approve_after_days) == ("security,bugfix", "critical", 3)
    assert (args.compliance_level, args.rejected_action, args.default, args.description) == (
        "high", "block", True, "Prod",
    )  # fmt: skip
    args = parse("patch", "baseline", "update", "prod", "--no-default", "--unapprove", "a", "--unreject", "c")
    assert (args.default, args.unapprove, args.unreject, args.file) == (False, ["a"], ["c"], None)
    assert parse("patch", "baseline", "update", "prod").default is None
    with pytest.raises(SystemExit):
        parse("patch", "baseline", "create", "prod", "--unapprove", "a")  # only update removes
    with pytest.raises(SystemExit):
        parse("patch", "baseline", "create", "prod", "--os", "solaris")
    with pytest.raises(SystemExit):
        parse("patch", "baseline", "assign", "prod", "--group", "g")  # --target is required


def test_other_groups_still_parse() -> None:
    # The handlers may be wrapped (--raw): what counts is that they parse to a command that is not patch's.
    for argv in (["run", "--all", "--", "true"], ["session", "list"]):
        func = parse(*argv).func
        assert callable(func) and getattr(func, "__module__", "") != patch.__name__


# -- scan and install requests ---------------------------------------------------------------------


def test_scan_request() -> None:
    args = parse("patch", "scan", "--target", "env=prod,role=web", "--max-concurrency", "5", "--no-refresh")
    request = patch_request.operation_request(args, install=False)
    assert request.target == pb.Target(selector="env=prod,role=web")
    assert (request.max_concurrency, request.max_errors, request.no_refresh) == ("5", "", True)
    assert (request.reboot, request.timeout_seconds) == ("", 0)  # the controller's defaults


def test_install_request_reboots_if_needed_by_default() -> None:
    request = patch_request.operation_request(parse("patch", "install", "--host", "a", "--host", "b"), install=True)
    assert request.target == pb.Target(hosts=["a", "b"])
    assert request.reboot == "if-needed"
    args = parse("patch", "install", "--all", "--reboot", "never", "--timeout", "1h30m", "--comment", "CHG-1")
    request = patch_request.operation_request(args, install=True)
    assert (request.target.all, request.reboot, request.timeout_seconds, request.comment) == (
        True,
        "never",
        5400,
        "CHG-1",
    )


def test_a_reboot_value_that_bypasses_argparse_is_refused() -> None:
    args = parse("patch", "install", "--all")
    args.reboot = "sometimes"
    with pytest.raises(InvalidInput, match="--reboot"):
        patch_request.operation_request(args, install=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["patch", "scan"], "no target given"),
        (["patch", "install", "--all", "--target", "env=prod"], "only one of"),
        (["patch", "scan", "--all", "--timeout", "0s"], "--timeout (must be positive|0s is out of range)"),
        (["patch", "scan", "--all", "--timeout", "soon"], "bad duration"),
    ],
)
def test_bad_operation_requests_are_refused_before_sending(argv: list[str], message: str) -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match=message):
        run(client, *argv)
    assert client.calls == []


def test_scan_follows_the_command_then_shows_compliance_of_the_same_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = FakeClient()
    assert run(client, "patch", "scan", "--target", "role=web") == 0
    assert call(client, "scan").target.selector == "role=web"
    kinds = [k for k, _ in client.calls]  # following the command may fetch it more than once
    assert kinds[:2] == ["scan", "watch"] and kinds[-2:] == ["get_command", "compliance"], kinds
    assert call(client, "compliance") == {"selector": "role=web", "hosts": [], "all_hosts": False}
    out = capsys.readouterr().out
    assert "2 hosts matched: h-0, h-1" in out
    assert "c-42: success on 2 hosts (2 success)" in out
    assert "4 hosts: 1 compliant, 2 non-compliant, 1 not scanned" in out
    assert "SCAN-REPORT" not in out  # the agent's report on stdout is not printed


def test_install_exit_status_follows_the_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(states=(pb.INVOCATION_STATE_SUCCESS, pb.INVOCATION_STATE_FAILED))
    assert run(client, "patch", "install", "--host", "h-0", "--host", "h-1", "--reboot", "never") == 1
    assert call(client, "install").reboot == "never"
    assert call(client, "compliance") == {"selector": "", "hosts": ["h-0", "h-1"], "all_hosts": False}
    out = capsys.readouterr().out
    assert "1 host exit 1 (h-1)" in out
    assert "stderr: apt-get: lock held" in out
    assert "SCAN-REPORT" not in out


def test_detach_prints_the_command_id_only(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    assert run(client, "patch", "install", "--all", "--detach") == 0
    assert [k for k, _ in client.calls] == ["install"]
    assert capsys.readouterr().out.splitlines()[-1] == "c-42"


def test_json_output_of_an_operation_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(states=(pb.INVOCATION_STATE_SUCCESS, pb.INVOCATION_STATE_TIMED_OUT))
    assert run(client, "patch", "scan", "--all", "-o", "json") == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["command"]["id"] == "c-42"
    assert [(i["host"], i["state"]) for i in doc["invocations"]] == [("h-0", "success"), ("h-1", "timed_out")]
    assert all("stdout" not in i and "stdout_bytes" in i for i in doc["invocations"])
    assert doc["compliance"]["non_compliant"] == 2
    assert {h["host_name"] for h in doc["compliance"]["hosts"]} == {"web-1", "db-1", "new-1", "api-1"}
    assert "2 hosts matched" in captured.err  # notes go to stderr under -o json


# -- compliance ------------------------------------------------------------------------------------


def test_summary_lines() -> None:
    assert patch_render.summary_line(FLEET) == "4 hosts: 1 compliant, 2 non-compliant, 1 not scanned"
    assert patch_render.missing_line(FLEET.missing_by_severity) == "missing: 2 critical, 1 important"
    counts = {"low": 4, "critical": 1, "unspecified": 2, "moderate": 3}
    assert patch_render.missing_line(counts) == "missing: 1 critical, 3 moderate, 4 low, 2 unspecified"
    assert patch_render.missing_line({}) == "missing: none"


def test_totals_are_counted_from_the_hosts_when_the_controller_gives_none() -> None:
    response = pb.PatchComplianceResponse(hosts=list(FLEET.hosts))
    assert patch_render.fleet_counts(response) == (1, 2, 1)
    assert (
        patch_render.summary_line(pb.PatchComplianceResponse())
        == "0 hosts: 0 compliant, 0 non-compliant, 0 not scanned"
    )


def test_fleet_table_lists_non_compliant_hosts_first(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    assert run(client, "patch", "compliance") == 0
    assert call(client, "compliance") == {"selector": "", "hosts": [], "all_hosts": False}
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "4 hosts: 1 compliant, 2 non-compliant, 1 not scanned",
        "missing: 2 critical, 1 important",
        f"pending approval: 144 on 1 host (next approved {output.when(SOON)}, in 5d; "
        "132 not approved by any rule); unknown for 1 host scanned before this count existed",
    ]
    header = lines[4].split()
    assert header == [
        "HOST", "STATUS", "BASELINE", "MISSING", "FAILED", "PENDING-REBOOT", "REJECTED", "INSTALLED", "OTHER",
        "PENDING-APPROVAL", "SCANNED", "OPERATION",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[5:]] == ["api-1", "db-1", "new-1", "web-1"]
    assert lines[5].split()[10] == "?"  # reported before the controller counted pending approvals
    db = lines[6].split()
    assert db[:9] == ["db-1", "non-compliant", "(high)", "prod-linux", "2", "1", "0", "0", "0"]
    assert db[9:] == ["150", "0", "2h", "ago", "scan"]
    assert lines[7].split() == ["new-1", "not", "scanned", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"]
    web = lines[8].split()
    assert web[:2] == ["web-1", "compliant"] and web[8:12] == ["200", "144,", "next", SOON_DAY]


def test_several_hosts_are_a_fleet_summary(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(client, "patch", "compliance", "--host", "a", "--host", "b")
    assert call(client, "compliance") == {"selector": "", "hosts": ["a", "b"], "all_hosts": False}
    assert "4 hosts:" in capsys.readouterr().out


def test_findings_sort_non_compliant_first_worst_level_first() -> None:
    names = [f.name for f in patch_render.sorted_findings(ONE_HOST.findings)]
    assert names == ["openssl", "libc6", "curl", "nginx", "vim", "bash", "zlib"]


def test_one_host_shows_its_findings_and_history(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(compliance=ONE_HOST)
    assert run(client, "patch", "compliance", "--host", "db-1") == 0
    assert call(client, "compliance") == {"host": "db-1"}
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("db-1: non-compliant (critical), baseline prod-linux (patch group databases), linux/apt")
    assert "by scan c-9" in lines[0] and lines[0].endswith("reboot pending")
    assert lines[1] == "missing: 1 critical, 1 important"
    assert lines[2] == (f"pending approval: 3 (next approved {output.when(SOON)}, in 5d; 1 not approved by any rule)")
    note = "(2 other installed packages not listed; --all-findings lists them)"
    table = lines[4 : lines.index(note)]
    assert table[0].split() == [
        "NAME", "STATE", "INSTALLED", "CANDIDATE", "CLASSIFICATION", "SEVERITY", "LEVEL", "DETAIL",
    ]  # fmt: skip
    assert [row.split()[0] for row in table[1:]] == ["openssl", "libc6", "curl", "nginx", "vim"]
    assert table[1].split() == ["openssl", "missing", "-", "3.0.15", "security", "critical", "critical", "-"]
    assert table[2].split()[-3:] == ["dpkg:", "error", "1"]
    assert lines[lines.index(note) + 1] == ""
    pending = lines[lines.index("pending approval (3, the soonest approved first):") + 1 :]
    assert pending[0].split() == [
        "NAME", "INSTALLED", "CANDIDATE", "CLASSIFICATION", "SEVERITY", "APPROVED-FROM", "WHY",
    ]  # fmt: skip
    assert pending[1].split()[:7] == [
        "curl.amd64",
        "7.88",
        "7.90",
        "security",
        "important",
        *output.when(SOON).split(),
    ]
    assert pending[3].split()[:6] == ["cowsay", "-", "3.04", "enhancement", "-", "no"]
    assert "no approval rule or approved pattern matches" in pending[3]
    history = lines[lines.index("history (newest first):") + 1 :]
    assert history[0].split()[:3] == ["TIME", "OPERATION", "STATUS"]
    assert history[1].split()[2:6] == ["install", "non-compliant", "3", "0"]
    assert history[2].split()[-2:] == ["prod-linux", "c-1"]


def test_all_findings_lists_installed_other_too(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(compliance=ONE_HOST), "patch", "compliance", "--host", "db-1", "--all-findings")
    out = capsys.readouterr().out
    assert "bash" in out and "zlib" in out and "not listed" not in out


def test_one_host_without_a_record(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(compliance=pb.PatchComplianceResponse()), "patch", "compliance", "--host", "gone")
    assert capsys.readouterr().out.strip() == "gone: no compliance record"


def test_compliance_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(compliance=ONE_HOST), "patch", "compliance", "--host", "db-1", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert doc["hosts"][0]["counts"]["missing"] == 2
    assert doc["hosts"][0]["pending_approval"] == 3 and doc["hosts"][0]["pending_undated"] == 1
    assert doc["hosts"][0]["next_approval_at"] == SOON.ToJsonString() == doc["next_approval_at"]
    assert [(u["name"], u.get("approved_at")) for u in doc["pending_updates"]] == [
        ("curl", SOON.ToJsonString()),
        ("zlib", LATER.ToJsonString()),
        ("cowsay", None),  # no rule approves it: no date
    ]
    assert [f["name"] for f in doc["findings"]][:2] == ["zlib", "bash"]  # as the controller sent them
    assert len(doc["history"]) == 2


def test_pending_approval_text() -> None:
    none = Timestamp()
    assert patch_render.pending_text(0, 0, none) == "none"
    assert patch_render.pending_text(1, 1, none) == "1 (no rule approves it)"
    assert patch_render.pending_text(132, 132, none) == "132 (no rule approves them)"
    when = output.when(SOON)
    assert patch_render.pending_text(2, 0, SOON) == f"2 (next approved {when}, in 5d)"
    passed = ts(2 * 86400)
    assert patch_render.pending_text(3, 1, passed) == (
        f"3 (next approved {output.when(passed)}, 2d ago (since the scan: scan again to count them as missing); "
        "1 not approved by any rule)"
    )


def test_a_host_line_says_when_the_count_is_unknown_and_nothing_when_never_scanned() -> None:
    scanned = host("old-1", "compliant")
    assert (
        patch_render.host_pending_line(scanned)
        == "pending approval: unknown (the report predates this count: scan again)"
    )
    assert patch_render.host_pending_line(host("new-1", "not_scanned")) is None
    assert patch_render.host_pending_line(host("ok-1", "compliant", pending_approval=0)) == "pending approval: none"


def test_a_compliant_host_shows_what_waits(capsys: pytest.CaptureFixture[str]) -> None:
    """The issue: "compliant, missing: none (no findings)" while 144 updates waited for approval."""
    waiting = pb.PatchComplianceResponse(
        hosts=[host("web-1", "compliant", pending_approval=2, next_approval_at=SOON)],
        compliant=1,
        pending_updates=[
            pb.PendingUpdate(name="a", candidate_version="2", approved_at=SOON),
            pb.PendingUpdate(name="b", candidate_version="2", approved_at=SOON),
        ],
    )
    run(FakeClient(compliance=waiting), "patch", "compliance", "--host", "web-1")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("web-1: compliant")
    assert lines[1:4] == [
        "missing: none",
        f"pending approval: 2 (next approved {output.when(SOON)}, in 5d)",
        "",
    ]
    assert "(no findings)" in lines and "pending approval (2, the soonest approved first):" in lines


def test_one_host_lists_the_soonest_pending_updates_unless_all_findings(capsys: pytest.CaptureFixture[str]) -> None:
    many = [pb.PendingUpdate(name=f"pkg-{i:03}", candidate_version="2") for i in range(patch_render.PENDING_ROWS + 5)]
    response = pb.PatchComplianceResponse(
        hosts=[host("web-1", "compliant", pending_approval=len(many), pending_undated=len(many))],
        pending_updates=many,
    )
    run(FakeClient(compliance=response), "patch", "compliance", "--host", "web-1")
    out = capsys.readouterr().out
    assert f"pkg-{patch_render.PENDING_ROWS - 1:03}" in out and f"pkg-{patch_render.PENDING_ROWS:03}" not in out
    assert "(5 more; --all-findings or -o json lists them)" in out
    run(FakeClient(compliance=response), "patch", "compliance", "--host", "web-1", "--all-findings")
    out = capsys.readouterr().out
    assert f"pkg-{patch_render.PENDING_ROWS + 4:03}" in out and "more;" not in out


def test_a_scan_ends_with_the_pending_approval_count(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "patch", "scan", "--all")
    assert "pending approval: 144 on 1 host (next approved" in capsys.readouterr().out
    run(FakeClient(), "patch", "scan", "--all", "-o", "json")
    compliance = json.loads(capsys.readouterr().out)["compliance"]
    assert compliance["pending_approval"] == 144 and compliance["pending_approval_hosts"] == 1
    assert compliance["next_approval_at"] == SOON.ToJsonString()
    by_host = {h["host_name"]: h.get("pending_approval") for h in compliance["hosts"]}
    assert by_host == {"web-1": 144, "db-1": 0, "new-1": None, "api-1": None}  # None: not counted (unknown)


# -- baseline files --------------------------------------------------------------------------------

YAML_BASELINE = """\
name: prod-linux
os_family: linux
description: Production Linux servers
rules:
  - classifications: [security]
    severities: [critical, important]
    approve_after_days: 7
    compliance_level: critical
  - classifications: [bugfix]
    approve_after_days: 14
    compliance_level: medium
approved_patches: [nginx, "openssl=3.0.*"]
rejected_patches: ["telnet*", "kernel=6.1.0-9*"]
rejected_action: block
compliance_level: high
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def create_args(*extra: str) -> argparse.Namespace:
    return parse("patch", "baseline", "create", *extra)


def test_a_yaml_file_becomes_the_canonical_document(tmp_path: Path) -> None:
    path = write(tmp_path, "prod.yaml", YAML_BASELINE)
    doc = patch_request.creation_document(create_args("prod-linux", "--file", path))
    assert doc["rules"] == [
        {
            "classifications": ["security"],
            "severities": ["critical", "important"],
            "approve_after_days": 7,
            "compliance_level": "critical",
        },
        {"classifications": ["bugfix"], "severities": [], "approve_after_days": 14, "compliance_level": "medium"},
    ]
    assert (doc["rejected_action"], doc["compliance_level"], doc["is_default"]) == ("block", "high", False)
    assert doc["approved_patches"] == ["nginx", "openssl=3.0.*"]


def test_a_json_file_gives_the_same_document(tmp_path: Path) -> None:
    import yaml

    yaml_doc = patch_request.creation_document(create_args("prod-linux", "-f", write(tmp_path, "a.yml", YAML_BASELINE)))
    json_path = write(tmp_path, "a.json", json.dumps(yaml.safe_load(YAML_BASELINE)))
    assert patch_request.creation_document(create_args("prod-linux", "--file", json_path)) == yaml_doc


@pytest.mark.parametrize(
    ("filename", "text", "message"),
    [
        ("bad.yaml", "name: [unclosed\nos_family: linux\n", r"bad\.yaml: not valid YAML at line \d+, column \d+"),
        ("bad.json", '{"name": "x",\n "os_family": }', r"bad\.json: not valid JSON at line 2, column 15"),
        ("list.yaml", "- name: x\n", r"list\.yaml: a baseline is a mapping of fields .*not a list"),
        ("empty.yaml", "", r"empty\.yaml is empty"),
        (
            "typo.yaml",
            "os_family: linux\nrules:\n  - aprove_after_days: 3\n",
            r"typo\.yaml: unknown key\(s\) in rules\[0\]: aprove_after_days",
        ),
        ("sev.yaml", "os_family: linux\nrules: [{severities: [urgent]}]\n", r"sev\.yaml: unknown severit\w* 'urgent'"),
        ("days.yaml", "os_family: linux\nrules: [{approve_after_days: 400}]\n", r"days\.yaml: approve_after_days 400"),
        ("pat.yaml", "os_family: linux\napproved_patches: ['open ssl']\n", r"pat\.yaml: bad patch pattern 'open ssl'"),
        ("os.yaml", "os_family: solaris\n", r"os\.yaml: unknown os_family 'solaris'"),
        ("noos.yaml", "description: x\n", r"noos\.yaml has no os_family"),
        ("other.yaml", "name: other\nos_family: linux\n", r"other\.yaml describes baseline 'other', not 'prod'"),
    ],
)
def test_bad_files_are_invalid_input_naming_the_file(tmp_path: Path, filename: str, text: str, message: str) -> None:
    path = write(tmp_path, filename, text)
    with pytest.raises(InvalidInput, match=message) as caught:
        patch_request.creation_document(create_args("prod", "--file", path))
    assert caught.value.hint


def test_a_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read baseline file .*nope.yaml"):
        patch_request.creation_document(create_args("prod", "--file", str(tmp_path / "nope.yaml")))


def test_a_bad_file_is_an_error_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient()
    monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(lambda cls, name=None: client))
    path = write(tmp_path, "typo.yaml", "os_family: linux\nrules:\n  - aprove_after_days: 3\n")
    assert cli.main(["patch", "baseline", "create", "prod", "--file", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: unknown key(s) in rules[0]: aprove_after_days\nhint: known keys:")
    assert "Traceback" not in err
    assert client.calls == []


def test_the_file_may_leave_name_and_os_to_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, "min.yaml", "rules: [{classifications: [security]}]\n")
    doc = patch_request.creation_document(create_args("web", "--os", "windows", "--file", path))
    assert (doc["name"], doc["os_family"], doc["rules"][0]["approve_after_days"]) == ("web", "windows", 7)


def test_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"os_family": "darwin"}'))
    assert patch_request.creation_document(create_args("mac", "--file", "-"))["os_family"] == "darwin"


# -- flags -> document -----------------------------------------------------------------------------


def test_flags_make_a_document_with_one_rule() -> None:
    args = create_args(
        "web", "--os", "linux", "--classification", "Bugfix, security", "--severity", "critical,high",
        "--approve-after-days", "3", "--compliance-level", "HIGH", "--approve", "nginx", "--approve", "nginx",
        "--reject", "telnet*", "--rejected-action", "allow-as-dependency", "--default", "--description", "Web tier",
    )  # fmt: skip
    assert patch_request.creation_document(args) == {
        "name": "web",
        "os_family": "linux",
        "description": "Web tier",
        "rules": [
            {
                "classifications": ["security", "bugfix"],
                "severities": ["critical", "important"],
                "approve_after_days": 3,
                "compliance_level": None,
            }
        ],
        "approved_patches": ["nginx"],
        "rejected_patches": ["telnet*"],
        "rejected_action": "allow_as_dependency",
        "compliance_level": "high",
        "is_default": True,
    }


def test_without_rule_flags_there_is_no_rule() -> None:
    doc = patch_request.creation_document(create_args("pinned", "--os", "linux", "--approve", "KB5034441"))
    assert (doc["rules"], doc["approved_patches"]) == ([], ["KB5034441"])


def test_any_means_no_filter() -> None:
    doc = patch_request.creation_document(
        create_args("all", "--os", "linux", "--classification", "any", "--severity", "ANY")
    )
    assert doc["rules"] == [
        {"classifications": [], "severities": [], "approve_after_days": 7, "compliance_level": None}
    ]
    with pytest.raises(InvalidInput, match="--severity any stands alone"):
        patch_request.creation_document(create_args("all", "--os", "linux", "--severity", "any,critical"))


def test_flags_change_what_the_file_says(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "os_family: linux\napproved_patches: [nginx]\nrules: [{approve_after_days: 7}]\n")
    args = create_args("prod", "--file", path, "--approve", "curl", "--approve-after-days", "0", "--os", "darwin")
    doc = patch_request.creation_document(args)
    assert (doc["os_family"], doc["approved_patches"], doc["rules"][0]["approve_after_days"]) == (
        "darwin", ["nginx", "curl"], 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "needs --os"),
        (["--os", "linux", "--approve-after-days", "361"], "baseline prod: approve_after_days 361 is out of range"),
        (["--os", "linux", "--severity", "urgent"], r"baseline prod: unknown severit\w* 'urgent'"),
        (["--os", "linux", "--compliance-level", "severe"], "unknown compliance_level 'severe'"),
        (["--os", "linux", "--approve", "a b"], "bad patch pattern 'a b' in approved_patches"),
    ],
)
def test_bad_flags_are_invalid_input(extra: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        patch_request.creation_document(create_args("prod", *extra))


def test_create_sends_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    assert run(client, "patch", "baseline", "create", "web", "--os", "linux", "--classification", "security") == 0
    name, doc = call(client, "create")
    assert (name, doc["name"], doc["rules"][0]["classifications"]) == ("web", "web", ["security"])
    assert capsys.readouterr().out.strip() == "created baseline web (linux, 1 rule, 0 approved, 0 rejected)"


def test_a_baseline_approving_nothing_is_noted(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "patch", "baseline", "create", "empty", "--os", "linux")
    assert "approves nothing" in capsys.readouterr().err


# -- update ----------------------------------------------------------------------------------------


def test_update_changes_fields_of_the_stored_document() -> None:
    client = FakeClient()
    argv = ("patch", "baseline", "update", "prod-linux", "--severity", "critical,important", "--approve", "curl")
    assert run(client, *argv, "--unreject", "telnet*", "--no-default") == 0
    assert call(client, "get") == "prod-linux"
    name, doc = call(client, "update")
    expected = {
        **STORED,
        "rules": [
            {
                "classifications": ["security"],
                "severities": ["critical", "important"],
                "approve_after_days": 7,
                "compliance_level": None,
            }
        ],
        "approved_patches": ["nginx", "curl"],
        "rejected_patches": [],
    }
    assert (name, doc) == ("prod-linux", expected)


def test_update_with_a_file_replaces_the_document(tmp_path: Path) -> None:
    client = FakeClient()
    path = write(tmp_path, "new.yaml", "name: prod-linux\nos_family: linux\n")
    run(client, "patch", "baseline", "update", "prod-linux", "--file", path)
    _, doc = call(client, "update")
    assert (doc["rules"], doc["approved_patches"], doc["rejected_action"]) == ([], [], "allow_as_dependency")
    assert [k for k, _ in client.calls] == ["update"]


def test_update_refusals() -> None:
    with pytest.raises(InvalidInput, match="nothing to change"):
        run(FakeClient(), "patch", "baseline", "update", "prod-linux")
    with pytest.raises(InvalidInput, match="--unapprove vim: not in the approved_patches") as caught:
        run(FakeClient(), "patch", "baseline", "update", "prod-linux", "--unapprove", "vim")
    assert caught.value.hint == "they are: nginx"
    two_rules = {**STORED, "rules": [{"approve_after_days": 1}, {"approve_after_days": 2}]}
    with pytest.raises(InvalidInput, match="has 2 approval rules") as caught:
        run(FakeClient(stored=two_rules), "patch", "baseline", "update", "prod-linux", "--approve-after-days", "3")
    assert "show prod-linux -o yaml" in caught.value.hint
    client = FakeClient(builtin=True)
    with pytest.raises(Conflict, match="built-in"):
        run(client, "patch", "baseline", "update", "fleetops-default-linux", "--approve", "x")
    assert [k for k, _ in client.calls] == ["get"]


# -- show, list, delete ----------------------------------------------------------------------------


def test_show_yaml_reads_back_as_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "patch", "baseline", "show", "prod-linux", "-o", "yaml")
    path = write(tmp_path, "shown.yaml", capsys.readouterr().out)
    assert patch_request.creation_document(create_args("prod-linux", "--file", path)) == {
        **STORED,
        "rules": [{**STORED["rules"][0], "compliance_level": None}],
    }


def test_show_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "patch", "baseline", "show", "prod-linux")
    out = capsys.readouterr().out
    assert "rejected action   block" in out
    assert "  1. security / critical, after 7 days" in out
    run(FakeClient(), "patch", "baseline", "show", "prod-linux", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert "document_json" not in doc
    assert (doc["name"], doc["document"], doc["updated_by"]) == ("prod-linux", STORED, "alice")


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "patch", "baseline", "list")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "OS", "DEFAULT", "BUILT-IN", "RULES", "APPROVED", "REJECTED", "UPDATED", "BY"]
    assert lines[1].split()[:7] == ["b-bad", "?", "-", "-", "0", "0", "0"]
    assert lines[2].split()[:7] == ["prod-linux", "linux", "-", "-", "1", "1", "1"]
    run(FakeClient(), "patch", "baseline", "list", "-o", "json")
    assert [d["document"] for d in json.loads(capsys.readouterr().out)] == [STORED, {}]


def test_delete(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(client, "patch", "baseline", "delete", "old")
    assert call(client, "delete") == "old"
    assert capsys.readouterr().out.strip() == "deleted baseline old"


# -- patch groups ----------------------------------------------------------------------------------


def test_assign(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    argv = ("patch", "baseline", "assign", "prod-linux", "--group", "web", "--target", "env=prod,role=web")
    assert run(client, *argv, "--priority", "10") == 0
    assert call(client, "assign") == {
        "group": "web",
        "selector": "env=prod,role=web",
        "baseline": "prod-linux",
        "priority": 10,
    }
    out = capsys.readouterr().out.strip()
    assert out == "patch group web: hosts matching 'env=prod,role=web' use baseline prod-linux (priority 10)"
    client = FakeClient()
    run(client, "patch", "baseline", "assign", "prod-linux", "--group", "web", "--target", "role=web")
    assert call(client, "assign")["priority"] == 0
    assert "(priority 100)" in capsys.readouterr().out


def test_assign_refusals() -> None:
    client = FakeClient()
    with pytest.raises(SelectorError):
        run(client, "patch", "baseline", "assign", "b", "--group", "g", "--target", "role in (web")
    with pytest.raises(InvalidInput, match="--priority must be 1 or more"):
        run(client, "patch", "baseline", "assign", "b", "--group", "g", "--target", "role=web", "--priority", "0")
    assert client.calls == []


def test_groups(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    run(client, "patch", "group", "list")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["GROUP", "PRIORITY", "BASELINE", "SELECTOR"],
        ["db", "10", "db-linux", "role=db"],
        ["web", "100", "prod-linux", "role=web"],
    ]
    run(client, "patch", "group", "list", "-o", "json")
    assert [g["name"] for g in json.loads(capsys.readouterr().out)] == ["web", "db"]
    run(client, "patch", "group", "delete", "web")
    assert call(client, "delete_group") == "web"
