"""Who may run which document (rules' ``documents``), and the command a document run becomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from fleetops.common import documents
from fleetops.common.errors import InvalidInput
from fleetops.common.roles import BUILTIN_ROLES, Role, Rule, role_from_text
from fleetops.common.selectors import Selector
from fleetops.controller.authz import authorize, authorize_selector, permitted_hosts
from fleetops.controller.commands.models import CommandSpec
from fleetops.controller.documents.models import DocumentInfo, sha256
from fleetops.controller.documents.service import check_platforms, command_spec, parameters_shown
from fleetops.controller.fleet.models import Host, HostStatus, is_windows


@dataclass(frozen=True)
class FakeHost:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", "h-" + self.name)


WEB1 = FakeHost("web-1", {"role": "web", "env": "prod"})
WEB2 = FakeHost("web-2", {"role": "web", "env": "staging"})
DB1 = FakeHost("db-1", {"role": "db", "env": "prod"})
FLEET = [WEB1, DB1, WEB2]

RESTARTER = {"actions": ["document.run"], "hosts": "role=web", "documents": ["restart-*"], "logins": ["root"]}


def role(name: str = "r", allow: list[dict] | None = None, deny: list[dict] | None = None) -> Role:
    return Role.from_dict({"name": name, "allow": allow or [], "deny": deny or []})


def may_run(roles: list[Role], document: str, hosts: list[FakeHost] | None = None, login: str = "deploy") -> bool:
    return authorize(roles, "document.run", hosts=hosts or [WEB1], login=login, document=document).allowed


# -- a rule's documents ---------------------------------------------------------------------------


def test_a_rule_allows_its_documents_on_its_hosts_as_its_logins() -> None:
    web = role("web-restart", allow=[RESTARTER])
    decision = authorize([web], "document.run", hosts=[WEB1, WEB2], login="", document="restart-web")
    assert decision.allowed
    assert decision.matched == ["web-restart/allow[0]"]
    assert "may run document restart-web" in decision.message
    assert authorize([web], "document.run", hosts=[WEB1], login="root", document="restart-nginx").allowed


def test_a_document_outside_the_rule_is_refused_naming_it() -> None:
    web = role("web-restart", allow=[RESTARTER])
    decision = authorize([web], "document.run", hosts=[WEB1], login="", document="wipe-web", user="alice")
    assert not decision.allowed
    assert "alice may not run document wipe-web" in decision.reason
    assert "web-1 (no allow rule matches)" in decision.reason
    assert "document.run for wipe-web as root" in decision.hint
    assert decision.denied_hosts == ["web-1"]


def test_a_host_outside_the_rule_refuses_the_whole_run() -> None:
    web = role("web-restart", allow=[RESTARTER])
    decision = authorize([web], "document.run", hosts=[WEB1, DB1], login="", document="restart-web")
    assert not decision.allowed
    assert decision.denied_hosts == ["db-1"]
    assert "run document restart-web" in decision.reason and "the whole request is refused" in decision.reason


def test_a_login_the_rule_does_not_list_is_refused() -> None:
    web = role("web-restart", allow=[RESTARTER])
    decision = authorize([web], "document.run", hosts=[WEB1], login="deploy", document="restart-web")
    assert not decision.allowed
    assert "run document restart-web as deploy" in decision.reason
    # and root, when the rule lists only '*'
    anyone = role(allow=[{**RESTARTER, "logins": ["*"]}])
    assert may_run([anyone], "restart-web", login="deploy")
    assert not may_run([anyone], "restart-web", login="root")
    assert not may_run([anyone], "restart-web", login="")  # the agent's own account counts as root


def test_an_allow_rule_without_documents_allows_no_document() -> None:
    bare = role(allow=[{"actions": ["document.run"], "logins": ["*"]}])
    everything = role(allow=[{"actions": ["*"], "logins": ["*", "root"]}])
    for roles in ([bare], [everything]):
        decision = authorize(roles, "document.run", hosts=[WEB1], login="deploy", document="restart-web")
        assert not decision.allowed
        assert "no allow rule matches" in decision.reason
    # while command.run is what the '*' rule does allow
    assert authorize([everything], "command.run", hosts=[WEB1], login="deploy").allowed


def test_documents_star_allows_any_document() -> None:
    anything = role(allow=[{"actions": ["document.run"], "documents": ["*"], "logins": ["deploy"]}])
    for name in ("restart-web", "wipe-web", "fleetops-RunShellScript", "x"):
        assert may_run([anything], name), name
    assert not may_run([anything], "restart-web", login="root")  # documents widen nothing else


def test_patterns_are_case_sensitive_globs_of_the_whole_name() -> None:
    r = role(allow=[{"actions": ["document.run"], "documents": ["web-?", "db.backup"], "logins": ["deploy"]}])
    assert may_run([r], "web-1") and may_run([r], "db.backup")
    assert not may_run([r], "web-10")
    assert not may_run([r], "Web-1")
    assert not may_run([r], "dbxbackup")  # '.' is a dot, not any character
    assert not may_run([r], "db.backup-all")


def test_a_deny_rule_without_documents_refuses_every_document() -> None:
    r = role(
        "ops",
        allow=[{"actions": ["document.run"], "documents": ["*"], "logins": ["*"]}],
        deny=[{"actions": ["document.run"], "hosts": "env=prod"}],
    )
    decision = authorize([r], "document.run", hosts=[WEB1], login="deploy", document="restart-web")
    assert not decision.allowed
    assert "denied by ops/deny[0]" in decision.reason
    assert may_run([r], "restart-web", hosts=[WEB2])  # staging: no deny


def test_a_deny_rule_with_documents_refuses_only_those() -> None:
    r = role(
        "ops",
        allow=[{"actions": ["document.run"], "documents": ["*"], "logins": ["*"]}],
        deny=[{"actions": ["document.run"], "documents": ["wipe-*", "fleetops-RunShellScript"]}],
    )
    assert may_run([r], "restart-web")
    assert not may_run([r], "wipe-web")
    decision = authorize([r], "document.run", hosts=[WEB1], login="deploy", document="fleetops-RunShellScript")
    assert not decision.allowed and decision.matched == ["ops/deny[0]"]


def test_a_deny_in_another_role_wins() -> None:
    ops = role("ops", allow=[{"actions": ["document.run"], "documents": ["*"], "logins": ["*"]}])
    guard = role("guard", deny=[{"actions": ["*"], "documents": ["wipe-*"]}])
    assert may_run([ops, guard], "restart-web")
    assert not may_run([ops, guard], "wipe-web")


# -- the rule document --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "actions", [["command.run"], ["session.start", "command.run"], ["hosts.read"], ["ssh.forward"]]
)
def test_documents_on_a_rule_without_document_run_is_refused(actions: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        role(allow=[{"actions": actions, "documents": ["restart-*"]}])
    assert "allow[0].documents: documents only apply to document.run" in caught.value.message
    assert "add document.run" in caught.value.hint


def test_documents_on_a_star_rule_or_a_deny_rule_are_accepted() -> None:
    r = role(
        allow=[{"actions": ["*"], "documents": ["a-*"], "logins": ["*"]}], deny=[{"actions": ["*"], "documents": ["b"]}]
    )
    assert r.allow[0].documents == ("a-*",) and r.deny[0].documents == ("b",)
    assert may_run([r], "a-1") and not may_run([r], "b")


@pytest.mark.parametrize("pattern", ["restart web", "../etc", "-web", "web/1", "[ab]*", "", "a" * 129, "wéb"])
def test_a_bad_document_pattern_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        role(allow=[{"actions": ["document.run"], "documents": [pattern]}])
    assert f"documents: {pattern!r} is not a document name or pattern" in caught.value.message
    assert "restart-web" in caught.value.hint


@pytest.mark.parametrize("value", ["restart-*", {"a": 1}, [3]])
def test_documents_must_be_a_list_of_text(value: object) -> None:
    with pytest.raises(InvalidInput, match="documents"):
        role(allow=[{"actions": ["document.run"], "documents": value}])


def test_a_rule_keeps_its_documents_through_a_round_trip() -> None:
    rule = Rule.from_dict(RESTARTER)
    assert rule.to_dict() == {
        "actions": ["document.run"],
        "hosts": "role=web",
        "logins": ["root"],
        "documents": ["restart-*"],
    }
    assert Rule.from_dict(rule.to_dict()) == rule
    assert "documents restart-*" in rule.describe()
    plain = Rule(actions=("command.run",), logins=("deploy",))
    assert "documents" not in plain.to_dict()
    assert Rule.from_dict(plain.to_dict()) == plain


def test_a_role_file_with_documents_reads_back() -> None:
    r = role_from_text(
        "name: web-restart\nallow:\n  - actions: [document.run]\n    hosts: 'role=web'\n"
        "    documents: ['restart-*', '*']\n    logins: [root]\n",
        "web.yaml",
    )
    assert r.allow[0].documents == ("*",)  # '*' covers the rest
    assert Role.from_dict(r.to_dict()) == r


def test_the_admin_role_may_run_any_document_as_root_anywhere() -> None:
    admin = [BUILTIN_ROLES["admin"]]
    for name in ("wipe-web", "fleetops-RunShellScript", "restart-web"):
        assert authorize(admin, "document.run", hosts=FLEET, login="root", document=name).allowed
        assert authorize(admin, "document.run", hosts=FLEET, login="", document=name).allowed
    assert authorize_selector(admin, "document.run", None, login="root", document="wipe-web").allowed


def test_a_document_is_decided_only_for_document_run() -> None:
    with pytest.raises(ValueError, match="only document.run is decided for a document"):
        authorize([BUILTIN_ROLES["admin"]], "command.run", hosts=[WEB1], login="root", document="restart-web")


# -- selectors and filtering -------------------------------------------------------------------


def test_authorize_selector_honours_the_document_patterns() -> None:
    web = role("web-restart", allow=[RESTARTER])
    web_sel = Selector.parse("role=web")
    allowed = authorize_selector([web], "document.run", web_sel, login="root", document="restart-web")
    assert allowed.allowed and allowed.matched == ["web-restart/allow[0]"]
    assert authorize_selector(
        [web], "document.run", Selector.parse("role=web,env=prod"), login="", document="restart-x"
    ).allowed

    wrong_doc = authorize_selector([web], "document.run", web_sel, login="root", document="wipe-web", user="bob")
    assert not wrong_doc.allowed
    assert "bob may not run document wipe-web" in wrong_doc.reason
    assert "document.run for wipe-web as root" in wrong_doc.reason

    assert not authorize_selector(
        [web], "document.run", Selector.parse("role=db"), login="root", document="restart-web"
    ).allowed
    assert not authorize_selector([web], "document.run", None, login="root", document="restart-web").allowed
    assert not authorize_selector([web], "document.run", web_sel, login="deploy", document="restart-web").allowed


def test_authorize_selector_refuses_documents_a_deny_rule_names() -> None:
    r = role(
        "ops",
        allow=[{"actions": ["document.run"], "documents": ["*"], "logins": ["*"]}],
        deny=[{"actions": ["document.run"], "hosts": "env=prod", "documents": ["wipe-*"]}],
    )
    web_sel = Selector.parse("role=web")
    assert authorize_selector([r], "document.run", web_sel, login="deploy", document="restart-web").allowed
    denied = authorize_selector([r], "document.run", web_sel, login="deploy", document="wipe-web")
    assert not denied.allowed and denied.matched == ["ops/deny[0]"]
    assert "could match hosts that are denied" in denied.reason
    staging = Selector.parse("role=web,env=staging")
    assert authorize_selector([r], "document.run", staging, login="deploy", document="wipe-web").allowed


def test_permitted_hosts_filters_by_document() -> None:
    r = role(
        allow=[
            RESTARTER,
            {"actions": ["document.run"], "hosts": "role=db", "documents": ["backup-*"], "logins": ["root"]},
        ],
        deny=[{"actions": ["document.run"], "hosts": "env=staging", "documents": ["restart-nginx"]}],
    )
    assert permitted_hosts([r], "document.run", FLEET, login="root", document="restart-web") == [WEB1, WEB2]
    assert permitted_hosts([r], "document.run", FLEET, login="root", document="restart-nginx") == [WEB1]
    assert permitted_hosts([r], "document.run", FLEET, login="root", document="backup-db") == [DB1]
    assert permitted_hosts([r], "document.run", FLEET, login="root", document="wipe-web") == []
    assert permitted_hosts([r], "document.run", FLEET, login="deploy", document="restart-web") == []


# -- the command a document run becomes ------------------------------------------------------------


BOTH = """\
description: Restart a service
parameters:
  service: {pattern: '^[a-z0-9@._-]+$', default: nginx}
  reason: {}
  force: {type: boolean, default: false}
  units: {type: string_list, default: []}
run:
  shell: systemctl restart "$FLEETOPS_PARAM_SERVICE"
  powershell: Restart-Service -Name $env:FLEETOPS_PARAM_SERVICE
timeout: 5m
"""
SHELL_ONLY = "run:\n  shell: uptime\n"
POWERSHELL_ONLY = "run:\n  powershell: Get-Uptime\n"
HOSTILE = "x; rm -rf / $(id) `id` & del C:\\ ; $env:PATH"


def info(name: str, text: str, version: int = 3) -> DocumentInfo:
    doc = documents.parse(text)
    moment = datetime(2026, 2, 1, tzinfo=UTC)
    return DocumentInfo(
        name, version, text, doc.kind, doc.description, False, version, version, moment, "alice", sha256(text)
    )


def host(name: str, os_family: str | None) -> Host:
    inventory = {} if os_family is None else {"os_family": os_family, "hostname": name}
    moment = datetime(2026, 2, 1, tzinfo=UTC)
    return Host("h-" + name, name, HostStatus.ONLINE, {}, inventory, "act-1", moment, moment, moment, None)


LINUX = host("lin-1", "linux")
MAC = host("mac-1", "Darwin")
WIN1 = host("win-1", "Windows")
WIN2 = host("win-2", "windows")
SILENT = host("new-1", None)  # never reported its platform


def test_hosts_are_windows_by_their_reported_os_family() -> None:
    assert [is_windows(h) for h in (LINUX, MAC, WIN1, WIN2, SILENT)] == [False, False, True, True, False]


def test_command_spec_runs_the_scripts_with_the_parameters_in_the_environment() -> None:
    doc_info = info("restart", BOTH)
    doc = documents.parse(BOTH)
    values = doc.resolve({"reason": HOSTILE, "units": "a,b"})
    base = CommandSpec(
        argv=("ignored",),
        env={"LANG": "C", "FLEETOPS_PARAM_SERVICE": "sshd"},
        run_as="root",
        comment="weekly",
        timeout_seconds=120,
    )
    spec = command_spec(doc_info, doc, values, base)
    assert spec.argv == ()
    assert spec.script == b'systemctl restart "$FLEETOPS_PARAM_SERVICE"'
    assert spec.windows_script == b"Restart-Service -Name $env:FLEETOPS_PARAM_SERVICE"
    assert spec.env == {
        "LANG": "C",
        "FLEETOPS_PARAM_SERVICE": "nginx",  # the document's value wins over the base environment
        "FLEETOPS_PARAM_REASON": HOSTILE,
        "FLEETOPS_PARAM_FORCE": "false",
        "FLEETOPS_PARAM_UNITS": '["a","b"]',
    }
    assert spec.document == "restart:3"
    assert spec.parameters == {"service": "nginx", "reason": HOSTILE, "force": "false", "units": '["a","b"]'}
    assert (spec.run_as, spec.comment, spec.timeout_seconds) == ("root", "weekly", 120)
    assert HOSTILE.encode() not in spec.script and HOSTILE.encode() not in (spec.windows_script or b"")
    spec.validate()  # what CommandService.create will check passes
    assert base.env == {"LANG": "C", "FLEETOPS_PARAM_SERVICE": "sshd"}  # the caller's spec is not changed


def test_a_single_platform_document_has_one_script() -> None:
    shell = command_spec(info("up", SHELL_ONLY), documents.parse(SHELL_ONLY), {}, CommandSpec())
    assert (shell.script, shell.windows_script, shell.document) == (b"uptime", None, "up:3")
    ps = command_spec(info("up-win", POWERSHELL_ONLY, 1), documents.parse(POWERSHELL_ONLY), {}, CommandSpec())
    assert (ps.script, ps.windows_script, ps.document) == (b"Get-Uptime", None, "up-win:1")
    assert ps.env == {} and ps.parameters == {}


def test_an_action_document_is_no_script() -> None:
    text = documents.BUILTIN_DOCUMENTS["fleetops-PatchScan"]
    doc = documents.parse(text)
    with pytest.raises(InvalidInput, match="is 'action', not a script"):
        command_spec(info("fleetops-PatchScan", text, 1), doc, doc.resolve({}), CommandSpec())


def test_parameters_shown_are_the_text_the_hosts_get() -> None:
    doc = documents.parse(BOTH)
    values = doc.resolve({"reason": "r", "force": "yes", "units": ["x y", 'q"']})
    assert parameters_shown(doc, values) == {
        "service": "nginx",
        "reason": "r",
        "force": "true",
        "units": '["x y","q\\""]',
    }
    assert parameters_shown(doc, {"reason": "only"}) == {"reason": "only"}


def test_a_shell_only_document_refuses_windows_hosts_naming_them() -> None:
    doc_info, doc = info("up", SHELL_ONLY), documents.parse(SHELL_ONLY)
    with pytest.raises(InvalidInput) as caught:
        check_platforms(doc_info, doc, [LINUX, WIN1, MAC, WIN2, SILENT])
    assert caught.value.message == "document up:3 has no powershell script, and win-1, win-2 are Windows"
    assert "inv.os_family!=windows" in caught.value.hint and "run.powershell" in caught.value.hint
    with pytest.raises(InvalidInput, match="win-1 is Windows$"):
        check_platforms(doc_info, doc, [WIN1])
    assert check_platforms(doc_info, doc, [LINUX, MAC, SILENT]) is None


def test_a_powershell_only_document_refuses_other_hosts_naming_them() -> None:
    doc_info, doc = info("up-win", POWERSHELL_ONLY), documents.parse(POWERSHELL_ONLY)
    with pytest.raises(InvalidInput) as caught:
        check_platforms(doc_info, doc, [WIN1, LINUX, SILENT])
    assert caught.value.message == "document up-win:3 has no shell script, and lin-1, new-1 are not Windows"
    assert "inv.os_family=windows" in caught.value.hint and "run.shell" in caught.value.hint
    assert check_platforms(doc_info, doc, [WIN1, WIN2]) is None


def test_many_refused_hosts_are_counted_past_ten() -> None:
    doc_info, doc = info("up", SHELL_ONLY), documents.parse(SHELL_ONLY)
    hosts = [host(f"win-{i:02}", "windows") for i in range(13)]
    with pytest.raises(InvalidInput) as caught:
        check_platforms(doc_info, doc, hosts)
    assert "win-00, win-01" in caught.value.message and "win-09 and 3 more are Windows" in caught.value.message
    assert "win-10" not in caught.value.message


def test_a_document_with_both_scripts_or_an_action_runs_anywhere() -> None:
    everyone = [LINUX, MAC, WIN1, WIN2, SILENT]
    assert check_platforms(info("restart", BOTH), documents.parse(BOTH), everyone) is None
    scan = documents.BUILTIN_DOCUMENTS["fleetops-PatchScan"]
    assert check_platforms(info("fleetops-PatchScan", scan, 1), documents.parse(scan), everyone) is None
