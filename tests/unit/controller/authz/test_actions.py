"""The RPC -> action table covers every operator RPC, with valid actions only."""

from __future__ import annotations

import re
from pathlib import Path

from fleetops.common.roles import ACTIONS, HOST_SCOPED_ACTIONS
from fleetops.controller.authz import RPC_ACTIONS, RPC_PHRASES, RPC_SCOPE, TASK_ACTIONS, action_for
from fleetops.controller.authz.actions import ALTERNATIVE_ACTIONS, SSH_SESSION_ACTIONS

ROOT = Path(__file__).resolve().parents[4]


def operator_rpcs() -> set[str]:
    proto = (ROOT / "proto/fleetops/v1/operator.proto").read_text()
    service = proto[proto.index("service OperatorService") :]
    service = service[: service.index("\n}")]
    return set(re.findall(r"^\s*rpc\s+(\w+)\s*\(", service, re.MULTILINE))


def test_every_operator_rpc_has_an_entry_and_no_more() -> None:
    rpcs = operator_rpcs()
    assert len(rpcs) > 50
    assert set(RPC_ACTIONS) == rpcs


def test_actions_are_known_and_only_identity_calls_need_none() -> None:
    assert all(a is None or a in ACTIONS for a in RPC_ACTIONS.values())
    assert {m for m, a in RPC_ACTIONS.items() if a is None} == {
        "WhoAmI",
        "RenewOperatorCertificate",
        "CreateConsoleLink",  # a link for oneself: the browser session has the caller's rights
        "DecideAutomationApproval",  # decided by the approve step's approvers and role
        "ApplyConfiguration",  # each object decided as its own call would be (controller/config)
        "ExportConfiguration",  # each exported kind's read action
    }
    # every action guards something: an RPC, what happens inside an SSH session (authz.ssh), or a
    # run of a document (RunCommand with a document: document.run for it)
    alternatives = {a for actions in ALTERNATIVE_ACTIONS.values() for a in actions}
    assert set(ACTIONS) <= set(RPC_ACTIONS.values()) | SSH_SESSION_ACTIONS | alternatives
    assert set(ALTERNATIVE_ACTIONS) <= set(RPC_ACTIONS)
    assert not SSH_SESSION_ACTIONS & set(RPC_ACTIONS.values())


def test_control_plane_changes_need_admin() -> None:
    for method in ("DeregisterHost", "CreateActivation", "CreateUser", "UpdateRole", "IssueLoginToken"):
        assert action_for(method) == "admin"
    # Tagging is its own host-scoped right, decided on the tags before and after (authz.retag).
    assert action_for("TagHost") == action_for("TagHosts") == "hosts.tag"
    assert "TagHost" in RPC_SCOPE and "TagHosts" in RPC_SCOPE
    assert action_for("RunCommand") == "command.run"
    assert action_for("Session") == "session.start"
    assert action_for("GetSessionTranscript") == "audit.read"


def test_scope_notes_cover_host_scoped_rpcs_only() -> None:
    for method in RPC_SCOPE:
        assert RPC_ACTIONS[method] in HOST_SCOPED_ACTIONS, method
    for method in ("RunCommand", "Session", "ScanPatches", "InstallPatches", "GetHost", "ListHosts"):
        assert method in RPC_SCOPE


def test_window_task_actions() -> None:
    assert set(TASK_ACTIONS.values()) <= HOST_SCOPED_ACTIONS
    assert set(TASK_ACTIONS) == {"run", "patch-scan", "patch-install", "document", "automation"}


def test_every_rpc_that_can_be_refused_says_what_it_does_in_words() -> None:
    assert {m for m, a in RPC_ACTIONS.items() if a is not None} <= set(RPC_PHRASES)
    assert set(RPC_PHRASES) <= set(RPC_ACTIONS)
    assert RPC_PHRASES["CreateUser"] == "manage users"
    assert all(phrase and "." not in phrase for phrase in RPC_PHRASES.values())
