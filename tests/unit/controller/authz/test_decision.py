"""Authorization decisions: deny wins, nothing by default, per-host fan-out refusal, logins."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from fleetops.common.errors import PermissionDenied
from fleetops.common.roles import ACTIONS, BUILTIN_ROLES, GLOBAL_ACTIONS, HOST_SCOPED_ACTIONS, Role, Rule
from fleetops.controller.authz import ACTION_PHRASES, MAX_NAMED_HOSTS, authorize, permitted_hosts, visible_hosts


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
DB2 = FakeHost("db-2", {"role": "db", "env": "prod"})
PAY1 = FakeHost("pay-1", {"role": "web", "env": "prod", "pci": "yes"})
FLEET = [WEB1, WEB2, DB1, DB2, PAY1]


def role(name: str = "r", allow: list[dict] | None = None, deny: list[dict] | None = None) -> Role:
    return Role.from_dict({"name": name, "allow": allow or [], "deny": deny or []})


WEB_OPS = role(
    "web-ops",
    allow=[
        {"actions": ["hosts.read"]},
        {"actions": ["command.run", "session.start"], "hosts": "role=web", "logins": ["*"]},
    ],
    deny=[{"actions": ["*"], "hosts": "pci"}],
)


# -- nothing by default ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_no_roles_allow_nothing(action: str) -> None:
    login = "deploy" if action in ("command.run", "session.start") else None
    hosts = [WEB1] if action in HOST_SCOPED_ACTIONS else []
    decision = authorize([], action, hosts=hosts, login=login, user="bob")
    assert not decision.allowed
    assert "bob has no roles" in decision.reason
    assert "ask an admin" in decision.hint


@pytest.mark.parametrize("action", ACTIONS)
def test_a_role_without_rules_allows_nothing(action: str) -> None:
    assert not authorize([role("empty")], action).allowed


def test_an_allow_rule_grants_only_its_actions() -> None:
    reader = role(allow=[{"actions": ["hosts.read"]}])
    assert authorize([reader], "hosts.read", hosts=[WEB1]).allowed
    for action in set(ACTIONS) - {"hosts.read"}:
        login = "deploy" if action in ("command.run", "session.start") else None
        assert not authorize([reader], action, hosts=[WEB1], login=login).allowed, action


# -- deny wins ------------------------------------------------------------------------------------


def test_deny_wins_within_a_role() -> None:
    r = role(allow=[{"actions": ["*"]}], deny=[{"actions": ["admin"]}])
    assert authorize([r], "audit.read").allowed
    decision = authorize([r], "admin", user="alice")
    assert not decision.allowed
    assert decision.matched == ["r/deny[0]"]
    assert "denied by r/deny[0]" in decision.message
    assert "wins over any allow rule" in decision.hint


@pytest.mark.parametrize("order", [0, 1])
def test_deny_wins_across_roles_in_any_order(order: int) -> None:
    no_root = role("no-root", deny=[{"actions": ["session.start"], "logins": ["root"]}])
    roles = [BUILTIN_ROLES["admin"], no_root]
    if order:
        roles.reverse()
    assert not authorize(roles, "session.start", hosts=[WEB1], login="root").allowed
    assert authorize(roles, "session.start", hosts=[WEB1], login="deploy").allowed
    assert authorize(roles, "command.run", hosts=[WEB1], login="root").allowed


def test_deny_rule_with_hosts_refuses_only_those_hosts() -> None:
    assert authorize([WEB_OPS], "command.run", hosts=[WEB1], login="deploy").allowed
    decision = authorize([WEB_OPS], "command.run", hosts=[PAY1], login="deploy")
    assert not decision.allowed
    assert decision.denied_hosts == ["pay-1"]
    assert decision.matched == ["web-ops/deny[0]"]


def test_deny_without_logins_applies_whatever_the_login() -> None:
    r = role(allow=[{"actions": ["command.run"], "logins": ["deploy"]}], deny=[{"actions": ["command.run"]}])
    assert not authorize([r], "command.run", hosts=[WEB1], login="deploy").allowed
    assert not authorize([r], "command.run", hosts=[WEB1]).allowed  # reading commands too


def test_deny_with_logins_does_not_touch_requests_without_a_login() -> None:
    r = role(
        allow=[{"actions": ["command.run"], "logins": ["*", "root"]}],
        deny=[{"actions": ["command.run"], "logins": ["root"]}],
    )
    assert authorize([r], "command.run", hosts=[WEB1]).allowed  # e.g. GetCommand: no login involved
    assert authorize([r], "command.run", hosts=[WEB1], login="deploy").allowed
    assert not authorize([r], "command.run", hosts=[WEB1], login="root").allowed


def test_deny_star_login_includes_root() -> None:
    r = role(
        allow=[{"actions": ["session.start"], "logins": ["*", "root"]}],
        deny=[{"actions": ["session.start"], "logins": ["*"]}],
    )
    for login in ("deploy", "root", ""):
        assert not authorize([r], "session.start", hosts=[WEB1], login=login).allowed, login


# -- wildcard actions -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_star_without_hosts_covers_every_action(action: str) -> None:
    r = role(allow=[{"actions": ["*"], "logins": ["*"], "documents": ["*"]}])
    login = "deploy" if action in ("command.run", "document.run", "session.start") else None
    document = "restart-web" if action == "document.run" else None
    assert authorize([r], action, hosts=[DB1], login=login, document=document).allowed


def test_star_with_hosts_covers_only_host_scoped_actions() -> None:
    r = role(allow=[{"actions": ["*"], "hosts": "env=prod"}])
    assert authorize([r], "patch.install", hosts=[WEB1, DB1]).allowed
    assert not authorize([r], "patch.install", hosts=[WEB2]).allowed
    for action in GLOBAL_ACTIONS:
        assert not authorize([r], action).allowed, action


def test_host_limited_deny_star_does_not_deny_global_actions() -> None:
    r = role(allow=[{"actions": ["*"]}], deny=[{"actions": ["*"], "hosts": "pci"}])
    assert authorize([r], "admin").allowed
    assert not authorize([r], "hosts.read", hosts=[PAY1]).allowed


def test_hostless_deny_star_denies_everything() -> None:
    suspended = role("suspended", deny=[{"actions": ["*"]}])
    for action in ACTIONS:
        assert not authorize([BUILTIN_ROLES["admin"], suspended], action).allowed, action


# -- selectors, host by host ----------------------------------------------------------------------


def test_selector_is_matched_per_host() -> None:
    r = role(allow=[{"actions": ["patch.scan"], "hosts": "env=prod,role in (web,db)"}])
    assert [h.name for h in permitted_hosts([r], "patch.scan", FLEET)] == ["web-1", "db-1", "db-2", "pay-1"]
    assert authorize([r], "patch.scan", hosts=[WEB1, DB1]).allowed
    assert not authorize([r], "patch.scan", hosts=[WEB2]).allowed


def test_rules_of_several_roles_add_up_host_by_host() -> None:
    web = role("web", allow=[{"actions": ["patch.scan"], "hosts": "role=web"}])
    db = role("db", allow=[{"actions": ["patch.scan"], "hosts": "role=db"}])
    decision = authorize([web, db], "patch.scan", hosts=[WEB1, DB1])
    assert decision.allowed
    assert decision.matched == ["web/allow[0]", "db/allow[0]"]
    assert decision.host_count == 2
    assert not authorize([web], "patch.scan", hosts=[WEB1, DB1]).allowed


def test_an_empty_host_selector_means_every_host() -> None:
    r = role(allow=[{"actions": ["hosts.read"], "hosts": ""}])
    assert authorize([r], "hosts.read", hosts=FLEET).allowed
    untagged = FakeHost("bare", {})
    assert authorize([r], "hosts.read", hosts=[untagged]).allowed


# -- fan-out refused as a whole ---------------------------------------------------------------------


def test_fan_out_touching_an_unreachable_host_is_refused_whole_naming_hosts() -> None:
    decision = authorize([WEB_OPS], "command.run", hosts=FLEET, login="deploy", user="alice")
    assert not decision.allowed
    assert decision.denied_hosts == ["db-1", "db-2", "pay-1"]
    assert decision.message == (
        "alice may not run commands as deploy on 3 of 5 hosts: db-1, db-2 (no allow rule matches); "
        "pay-1 (denied by web-ops/deny[0]); the whole request is refused"
    )
    assert decision.hint.startswith("narrow the target to the hosts you may reach")
    assert "ask an admin for a role that allows command.run as deploy on them" in decision.hint
    assert decision.reason == f"{decision.message} — {decision.hint}"


def test_refusal_of_every_host_names_them_without_a_count() -> None:
    decision = authorize([WEB_OPS], "command.run", hosts=[DB1, DB2], login="deploy", user="alice")
    assert decision.reason == (
        "alice may not run commands as deploy on db-1, db-2 (no allow rule matches); the whole request is refused"
        " — ask an admin for a role that allows command.run as deploy on them"
    )


def test_long_refusals_name_the_first_hosts_and_count_the_rest() -> None:
    hosts = [FakeHost(f"db-{i:02}", {"role": "db"}) for i in range(MAX_NAMED_HOSTS + 13)]
    decision = authorize([WEB_OPS], "command.run", hosts=[WEB1, *hosts], login="deploy")
    assert len(decision.denied_hosts) == MAX_NAMED_HOSTS + 13
    assert "db-19 (no allow rule matches); and 13 more" in decision.message
    assert "db-20" not in decision.message
    assert f"{MAX_NAMED_HOSTS + 13} of {MAX_NAMED_HOSTS + 14} hosts" in decision.message


def test_a_host_given_twice_is_decided_once() -> None:
    decision = authorize([WEB_OPS], "command.run", hosts=[DB1, DB1, WEB1], login="deploy")
    assert decision.denied_hosts == ["db-1"]
    assert decision.host_count == 2


def test_nameless_hosts_are_named_by_id() -> None:
    ghost = FakeHost("", {"role": "db"}, id="h-0001")
    assert authorize([WEB_OPS], "hosts.read", hosts=[ghost]).allowed
    assert authorize([WEB_OPS], "patch.scan", hosts=[ghost]).denied_hosts == ["h-0001"]


# -- logins ---------------------------------------------------------------------------------------


def test_star_login_excludes_root() -> None:
    assert authorize([WEB_OPS], "session.start", hosts=[WEB1], login="deploy").allowed
    assert not authorize([WEB_OPS], "session.start", hosts=[WEB1], login="root").allowed


def test_root_must_be_listed_explicitly() -> None:
    r = role(allow=[{"actions": ["session.start"], "logins": ["deploy", "root"]}])
    assert authorize([r], "session.start", hosts=[WEB1], login="root").allowed
    assert authorize([r], "session.start", hosts=[WEB1], login="deploy").allowed
    assert not authorize([r], "session.start", hosts=[WEB1], login="postgres").allowed


def test_empty_login_is_decided_as_root() -> None:
    star = role(allow=[{"actions": ["command.run"], "logins": ["*"]}])
    decision = authorize([star], "command.run", hosts=[WEB1], login="", user="alice")
    assert not decision.allowed
    assert "as the agent's own account (decided as root)" in decision.message
    assert "allows command.run as root on them" in decision.hint
    assert decision.to_audit()["login_checked_as"] == "root"
    with_root = role(allow=[{"actions": ["command.run"], "logins": ["root"]}])
    assert authorize([with_root], "command.run", hosts=[WEB1], login="").allowed


def test_allow_rule_without_logins_grants_only_requests_without_a_login() -> None:
    r = role(allow=[{"actions": ["command.run"]}])
    assert authorize([r], "command.run", hosts=[WEB1]).allowed  # read or cancel commands
    assert not authorize([r], "command.run", hosts=[WEB1], login="deploy").allowed


def test_a_malformed_login_never_matches_star() -> None:
    r = role(allow=[{"actions": ["command.run"], "logins": ["*"]}])
    assert not authorize([r], "command.run", hosts=[WEB1], login="*").allowed
    assert not authorize([r], "command.run", hosts=[WEB1], login="a b").allowed


# -- global actions and "on some host" --------------------------------------------------------------


def test_global_actions_ignore_hosts() -> None:
    auditor = BUILTIN_ROLES["auditor"]
    assert authorize([auditor], "audit.read", hosts=[PAY1, DB1]).allowed
    decision = authorize([auditor], "window.manage", hosts=[WEB1], user="carol")
    assert not decision.allowed
    assert decision.denied_hosts == []
    assert decision.reason == (
        "carol may not manage maintenance windows: that needs window.manage (no allow rule matches)"
        " — ask an admin for a role that allows window.manage"
    )


def test_host_scoped_action_without_hosts_means_on_some_host() -> None:
    db_only = role(allow=[{"actions": ["hosts.read"], "hosts": "role=db"}])
    decision = authorize([db_only], "hosts.read")
    assert decision.allowed
    assert decision.message == "you may read hosts on some hosts (r/allow[0])"
    # a deny limited to some hosts leaves the others
    assert authorize([WEB_OPS], "hosts.read").allowed
    # a deny on every host refuses
    everywhere = role(allow=[{"actions": ["hosts.read"]}], deny=[{"actions": ["hosts.read"]}])
    assert not authorize([everywhere], "hosts.read").allowed
    decision = authorize([BUILTIN_ROLES["auditor"]], "patch.scan")
    assert not decision.allowed
    assert "on any host" in decision.message


# -- arguments, results, audit ----------------------------------------------------------------------


def test_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        authorize([BUILTIN_ROLES["admin"]], "hosts.write")
    with pytest.raises(ValueError, match="takes no login"):
        authorize([BUILTIN_ROLES["admin"]], "patch.install", hosts=[WEB1], login="root")


def test_decision_raises_permission_denied_with_hint() -> None:
    decision = authorize([WEB_OPS], "admin", user="alice")
    assert not decision
    with pytest.raises(PermissionDenied) as caught:
        decision.check()
    assert caught.value.message == "alice may not administer the controller: that needs admin (no allow rule matches)"
    assert caught.value.hint == "ask an admin for a role that allows admin"
    ok = authorize([WEB_OPS], "hosts.read", hosts=[WEB1])
    assert ok and ok.check() is ok


def test_audit_details_of_a_refusal() -> None:
    decision = authorize([WEB_OPS], "session.start", hosts=[WEB1, PAY1], login="deploy", user="alice")
    details = decision.to_audit()
    assert details == {
        "action": "session.start",
        "allowed": False,
        "login": "deploy",
        "hosts": 2,
        "denied_hosts": ["pay-1"],
        "denied_count": 1,
        "matched": ["web-ops/deny[0]"],
        "reason": decision.message,
    }
    json.dumps(details)  # storable as event details


def test_audit_details_of_an_allowance_name_the_rules() -> None:
    details = authorize([WEB_OPS], "command.run", hosts=[WEB1, WEB2], login="deploy").to_audit()
    assert details["allowed"] is True
    assert details["matched"] == ["web-ops/allow[1]"]
    assert details["denied_hosts"] == [] and details["denied_count"] == 0
    assert "login_checked_as" not in details


def test_audit_details_cap_the_host_list() -> None:
    hosts = [FakeHost(f"db-{i}", {"role": "db"}) for i in range(500)]
    details = authorize([WEB_OPS], "patch.scan", hosts=hosts).to_audit()
    assert details["denied_count"] == 500
    assert len(details["denied_hosts"]) == 200


# -- filtering ------------------------------------------------------------------------------------


def test_visible_hosts_filters_by_hosts_read_in_order() -> None:
    assert visible_hosts([WEB_OPS], FLEET) == [WEB1, WEB2, DB1, DB2]
    assert visible_hosts([], FLEET) == []
    assert visible_hosts([BUILTIN_ROLES["auditor"]], FLEET) == FLEET


def test_permitted_hosts_checks_logins_and_global_actions() -> None:
    assert permitted_hosts([WEB_OPS], "command.run", FLEET, login="deploy") == [WEB1, WEB2]
    assert permitted_hosts([WEB_OPS], "command.run", FLEET, login="root") == []
    assert permitted_hosts([BUILTIN_ROLES["admin"]], "admin", FLEET) == FLEET
    assert permitted_hosts([WEB_OPS], "admin", FLEET) == []


def test_rule_objects_can_be_used_directly() -> None:
    r = Role("direct", allow=(Rule(("patch.scan",), hosts="role=db"),))
    assert authorize([r], "patch.scan", hosts=[DB1, DB2]).allowed


# -- what a refusal tells the caller ----------------------------------------------------------------

# alice reads and runs on dev hosts only: prod hosts do not exist as far as her messages go.
DEV_ONLY = role(
    "dev",
    allow=[
        {"actions": ["hosts.read"], "hosts": "env=dev"},
        {"actions": ["command.run"], "hosts": "env=dev,role=web", "logins": ["deploy"]},
    ],
    deny=[{"actions": ["command.run"], "hosts": "pci"}],
)
DEV_WEB = FakeHost("dev-web", {"env": "dev", "role": "web"})
DEV_DB = FakeHost("dev-db", {"env": "dev", "role": "db"})
PROD_1 = FakeHost("prod-1", {"env": "prod", "role": "web"})
PROD_PCI = FakeHost("prod-pci", {"env": "prod", "role": "web", "pci": "yes"})


def test_a_refusal_never_names_or_counts_hosts_the_caller_may_not_see() -> None:
    hosts = [DEV_WEB, DEV_DB, PROD_1, PROD_PCI]
    decision = authorize([DEV_ONLY], "command.run", hosts=hosts, login="deploy", user="alice", hide_unseen=True)
    assert not decision.allowed
    assert decision.message == (
        "alice may not run commands as deploy on dev-db (no allow rule matches), nor on matching hosts outside "
        "your access; the whole request is refused"
    )
    for secret in ("prod", "4", "3", "2", "pci", "deny[0]"):
        assert secret not in decision.reason, secret
    assert "opsctl hosts list shows the hosts you may see" in decision.hint
    # The audit event has the whole truth.
    details = decision.to_audit()
    assert details["denied_hosts"] == ["dev-db", "prod-1", "prod-pci"] and details["denied_count"] == 3
    assert details["hidden_hosts"] == ["prod-1", "prod-pci"] and details["hidden_count"] == 2
    assert details["matched"] == ["dev/deny[0]"] and details["hosts"] == 4


def test_a_target_of_only_unseen_hosts_says_so_without_a_count() -> None:
    decision = authorize(
        [DEV_ONLY], "command.run", hosts=[PROD_1, PROD_PCI], login="deploy", user="alice", hide_unseen=True
    )
    assert decision.message == (
        "alice may not run commands as deploy: the target matches hosts outside your access; "
        "the whole request is refused"
    )
    one = authorize([DEV_ONLY], "command.run", hosts=[PROD_1], login="deploy", user="alice", hide_unseen=True)
    assert one.message == "alice may not run commands as deploy: the host is outside your access"
    # The same hosts seen by someone who may read them are named, with the deny rule that refused them.
    seer = role("dev", allow=[{"actions": ["hosts.read"]}], deny=[{"actions": ["command.run"], "hosts": "pci"}])
    named = authorize([seer, DEV_ONLY], "command.run", hosts=[PROD_PCI], login="deploy", hide_unseen=True)
    assert "prod-pci (denied by dev/deny[0])" in named.message and "dev/deny[0]" in named.hint


def test_counts_only_what_the_caller_may_see_when_every_refused_host_is_visible() -> None:
    decision = authorize(
        [DEV_ONLY], "command.run", hosts=[DEV_WEB, DEV_DB], login="deploy", user="alice", hide_unseen=True
    )
    assert decision.message.startswith("alice may not run commands as deploy on 1 of 2 hosts: dev-db")
    assert not decision.hidden_hosts and "hidden_hosts" not in decision.to_audit()


def test_a_refused_read_never_confirms_what_the_host_is() -> None:
    decision = authorize(
        [DEV_ONLY], "hosts.read", hosts=[PROD_1], user="alice", what="read host details", hide_unseen=True
    )
    assert decision.message == "alice may not read host details: the host is outside your access"
    assert decision.denied_hosts == ["prod-1"]


def test_decisions_for_someone_else_name_every_host() -> None:
    # A window task is decided as its author and reported in the window's history, not to the author.
    decision = authorize([DEV_ONLY], "command.run", hosts=[DEV_WEB, PROD_1], login="deploy", user="bob")
    assert "prod-1 (no allow rule matches)" in decision.message and not decision.hidden_hosts


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_is_refused_in_words(action: str) -> None:
    assert ACTION_PHRASES[action] and ACTION_PHRASES[action] != action
    login = "deploy" if action in ("command.run", "session.start") else None
    hosts = [WEB1] if action in HOST_SCOPED_ACTIONS else []
    decision = authorize([role("empty")], action, hosts=hosts, login=login, user="alice")
    assert decision.message.startswith(f"alice may not {ACTION_PHRASES[action]}")
    assert action in decision.hint


def test_a_call_says_what_it_does() -> None:
    decision = authorize([WEB_OPS], "admin", user="alice", what="manage users")
    assert decision.message == "alice may not manage users: that needs admin (no allow rule matches)"
    assert decision.hint == "ask an admin for a role that allows admin"


def test_a_caller_without_roles_is_told_that_rather_than_anything_about_the_hosts() -> None:
    decision = authorize([], "command.run", hosts=[WEB1, DB1], login="deploy", user="bob", hide_unseen=True)
    assert decision.message == (
        "bob may not run commands as deploy: the target matches hosts outside your access; "
        "the whole request is refused (bob has no roles)"
    )
    assert "ask an admin to give you a role that allows command.run as deploy" in decision.hint
