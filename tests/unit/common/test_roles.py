"""The role document (common/roles.py): validation with hints, YAML/JSON files, built-ins, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetops.common.errors import Conflict, InvalidInput
from fleetops.common.roles import ACTIONS, BUILTIN_ROLES, Role, Rule, role_from_text, role_to_text
from fleetops.controller.authz import authorize, ensure_mutable

WEB_OPS_YAML = """\
name: web-ops
description: Run commands and open sessions on web hosts, never as root, never on PCI hosts.
allow:
  - actions: [hosts.read]
  - actions: [command.run, session.start]
    hosts: 'role=web, env in (staging,prod)'
    logins: ['*']
deny:
  - actions: ['*']
    hosts: pci
"""

WEB_OPS_JSON = json.dumps(
    {
        "name": "web-ops",
        "description": "Run commands and open sessions on web hosts, never as root, never on PCI hosts.",
        "allow": [
            {"actions": ["hosts.read"]},
            {"actions": ["command.run", "session.start"], "hosts": "role=web,env in (staging,prod)", "logins": ["*"]},
        ],
        "deny": [{"actions": ["*"], "hosts": "pci"}],
    },
    indent=2,
)


def invalid(text: str, source: str = "ops.yaml") -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        role_from_text(text, source)
    return caught.value


# -- loading --------------------------------------------------------------------------------------


def test_yaml_and_json_files_give_the_same_role() -> None:
    from_yaml = role_from_text(WEB_OPS_YAML, "web-ops.yaml")
    from_json = role_from_text(WEB_OPS_JSON, "web-ops.json")
    assert from_yaml == from_json
    assert from_yaml.allow[1].hosts == "role=web,env in (prod,staging)"  # canonical selector
    assert from_yaml.allow[0].hosts == ""
    assert from_yaml.deny[0].actions == ("*",)


def test_malformed_yaml_names_the_source_and_line() -> None:
    error = invalid("name: x\nallow:\n  - actions: [hosts.read\n", "roles/x.yaml")
    assert error.message.startswith("roles/x.yaml: not valid YAML at line 4")
    assert "docs/access.md" in error.hint


def test_malformed_json_names_the_source_line_and_column() -> None:
    error = invalid('{\n  "name": "x",\n  "allow": [}\n', "x.json")
    assert error.message == "x.json: not valid JSON at line 3, column 13: Expecting value"


def test_unquoted_negated_selector_gets_a_quoting_hint() -> None:
    error = invalid("name: x\nallow:\n  - actions: [hosts.read]\n    hosts: !canary\n")
    assert "line 4" in error.message
    assert "hosts: '!canary'" in error.hint


@pytest.mark.parametrize(
    "text",
    [
        "name: x\ndeny: []\nallow: []\ndeny: [{actions: ['*']}]\n",
        '{"name": "x", "deny": [{"actions": ["*"]}], "deny": []}',
    ],
)
def test_duplicate_keys_are_refused(text: str) -> None:
    # a silently dropped deny block would widen access
    error = invalid(text)
    assert "'deny' is given twice" in error.message


def test_duplicate_keys_inside_a_rule_are_refused() -> None:
    error = invalid("name: x\nallow:\n  - actions: [hosts.read]\n    actions: ['*']\n")
    assert "line 4" in error.message and "given twice" in error.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "ops.yaml is empty"),
        ("# nothing\n", "ops.yaml is empty"),
        ("- name: x\n", "ops.yaml: a role is a mapping of name, description, allow and deny, not a list"),
        ("just words\n", "ops.yaml: a role is a mapping of name, description, allow and deny, not text"),
    ],
)
def test_documents_that_are_not_one_role(text: str, message: str) -> None:
    assert invalid(text).message == message


def test_role_to_text_reads_back() -> None:
    r = role_from_text(WEB_OPS_YAML, "web-ops.yaml")
    assert role_from_text(role_to_text(r), "shown.yaml") == r
    assert role_from_text(role_to_text(r, "json"), "shown.json") == r
    for builtin in BUILTIN_ROLES.values():
        assert role_from_text(role_to_text(builtin), "b.yaml") == builtin


# -- validation -----------------------------------------------------------------------------------


def test_unknown_action_is_named_with_a_suggestion() -> None:
    error = invalid("name: ops\nallow:\n  - actions: [hosts.read, command.exec]\n")
    assert error.message == "ops.yaml: role 'ops': allow[0].actions: unknown action 'command.exec'"
    assert error.hint.startswith("did you mean command.run?")
    assert all(a in error.hint for a in ACTIONS)


def test_bad_selector_is_named_with_its_column() -> None:
    error = invalid("name: ops\ndeny:\n  - actions: ['*']\n  - actions: ['*']\n    hosts: 'env=prod,'\n")
    assert error.message.startswith("ops.yaml: role 'ops': deny[1].hosts: bad selector at column 10")
    assert "leave hosts out for every host" in error.hint


@pytest.mark.parametrize("login", ["bad name", "-dash", "a:b", ""])
def test_bad_login_names_are_refused(login: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Role.from_dict({"name": "ops", "allow": [{"actions": ["session.start"], "logins": [login]}]})
    assert caught.value.message == f"role 'ops': allow[0].logins: {login!r} is not a login name"
    assert "root must be listed explicitly" in caught.value.hint


def test_yaml_booleans_in_logins_get_a_quoting_hint() -> None:
    error = invalid("name: ops\nallow:\n  - actions: [session.start]\n    logins: [deploy, no]\n")
    assert error.message == "ops.yaml: role 'ops': allow[0].logins: False is a boolean, not a name"
    assert "quote it" in error.hint


def test_unknown_keys_in_a_rule() -> None:
    error = invalid("name: ops\nallow:\n  - actions: [hosts.read]\n    node_labels: {env: prod}\n")
    assert error.message == "ops.yaml: role 'ops': allow[0]: unknown key(s): node_labels"
    assert "hosts (a tag selector)" in error.hint


def test_unknown_keys_in_a_role_and_wrappers() -> None:
    error = invalid("kind: role\nmetadata: {name: ops}\nspec: {}\n")
    assert error.message == "ops.yaml: unknown key(s) in role: kind, metadata, spec"
    assert "no kind/metadata/spec wrapper" in error.hint
    error = invalid("name: ops\nallows: []\n")
    assert error.message == "ops.yaml: unknown key(s) in role: allows"


@pytest.mark.parametrize("action", ["admin", "audit.read", "window.manage"])
def test_global_actions_cannot_be_limited_to_hosts(action: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Rule.from_dict({"actions": ["hosts.read", action], "hosts": "env=prod"}, "allow[2]")
    assert caught.value.message.startswith(f"allow[2].actions: {action} cannot be limited to hosts 'env=prod'")
    assert "put it in a rule without hosts" in caught.value.hint


def test_logins_on_a_rule_without_login_actions_are_refused() -> None:
    with pytest.raises(InvalidInput, match="logins only apply to command.run, document.run and session.start"):
        Rule.from_dict({"actions": ["patch.install"], "logins": ["root"]})
    assert Rule.from_dict({"actions": ["*"], "logins": ["root"]}).logins == ("root",)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({}, "allow[0]: the rule has no actions"),
        ({"actions": []}, "allow[0].actions: a rule needs at least one action"),
        ({"actions": "hosts.read"}, "allow[0].actions must be a list, got text"),
        ({"actions": ["hosts.read"], "hosts": [1]}, "allow[0].hosts must be a tag selector (text), got a list"),
        ({"actions": ["session.start"], "logins": "deploy"}, "allow[0].logins must be a list, got text"),
        ("hosts.read", "allow[0]: a rule is a mapping, got text"),
    ],
)
def test_malformed_rules(rule: object, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Role.from_dict({"name": "ops", "allow": [rule]})
    assert caught.value.message == f"role 'ops': {message}"
    assert caught.value.hint


@pytest.mark.parametrize("name", ["", "-ops", "ops team", "x" * 65, None, 7])
def test_bad_role_names(name: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        Role.from_dict({"name": name})
    assert "letters, digits" in caught.value.hint


def test_role_without_name_and_long_description() -> None:
    with pytest.raises(InvalidInput, match="the role has no name"):
        Role.from_dict({"allow": []})
    with pytest.raises(InvalidInput, match="description is longer than 1024"):
        Role.from_dict({"name": "ops", "description": "x" * 1025})


def test_allow_must_be_a_list() -> None:
    with pytest.raises(InvalidInput) as caught:
        Role.from_dict({"name": "ops", "allow": {"actions": ["hosts.read"]}})
    assert caught.value.message == "role 'ops': allow must be a list of rules, got a mapping"


def test_star_hosts_means_every_host_and_repeats_collapse() -> None:
    rule = Rule.from_dict({"actions": ["hosts.read", "hosts.read"], "hosts": "*", "logins": None})
    assert rule == Rule(("hosts.read",))
    assert rule.selector is None
    assert Rule(("*", "admin")).actions == ("*",)
    assert Rule(("session.start",), logins=("deploy", "deploy", "root")).logins == ("deploy", "root")


# -- round trips ----------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip() -> None:
    r = role_from_text(WEB_OPS_YAML, "web-ops.yaml")
    d = r.to_dict()
    assert d == {
        "name": "web-ops",
        "description": "Run commands and open sessions on web hosts, never as root, never on PCI hosts.",
        "allow": [
            {"actions": ["hosts.read"], "hosts": "", "logins": []},
            {
                "actions": ["command.run", "session.start"],
                "hosts": "role=web,env in (prod,staging)",
                "logins": ["*"],
            },
        ],
        "deny": [{"actions": ["*"], "hosts": "pci", "logins": []}],
    }
    assert Role.from_dict(d) == r
    assert Role.from_dict(json.loads(json.dumps(d))) == r


def test_describe_lines() -> None:
    r = role_from_text(WEB_OPS_YAML, "web-ops.yaml")
    assert r.describe() == [
        "allow[0]: hosts.read on every host",
        "allow[1]: command.run, session.start on role=web,env in (prod,staging) as *",
        "deny[0]: * on pci",
    ]
    assert Role("empty").describe() == ["(no rules: grants nothing)"]


# -- built-ins ------------------------------------------------------------------------------------


def test_builtin_roles() -> None:
    assert set(BUILTIN_ROLES) == {"admin", "auditor"}
    assert all(r.builtin for r in BUILTIN_ROLES.values())
    assert not role_from_text(WEB_OPS_YAML, "x").builtin


def test_builtin_admin_may_do_everything_even_as_root() -> None:
    admin = [BUILTIN_ROLES["admin"]]
    host = type("H", (), {"id": "h-1", "name": "db-1", "tags": {"pci": "yes"}})()
    for action in ACTIONS:
        assert authorize(admin, action, hosts=[host]).allowed, action
    for login in ("root", "", "deploy"):
        assert authorize(admin, "session.start", hosts=[host], login=login).allowed, login


def test_builtin_auditor_reads_only() -> None:
    auditor = [BUILTIN_ROLES["auditor"]]
    allowed = {a for a in ACTIONS if authorize(auditor, a).allowed}
    assert allowed == {"audit.read", "hosts.read"}


@pytest.mark.parametrize("name", ["admin", "auditor"])
def test_builtin_roles_are_read_only(name: str) -> None:
    with pytest.raises(Conflict) as caught:
        ensure_mutable(name, "deleted")
    assert caught.value.message == f"role {name!r} is built in and cannot be deleted"
    assert "another name" in caught.value.hint
    ensure_mutable("web-ops", "deleted")  # no error


def test_roles_are_immutable() -> None:
    admin = BUILTIN_ROLES["admin"]
    with pytest.raises(AttributeError):
        admin.allow = ()  # type: ignore[misc]
    assert isinstance(admin.allow, tuple)


def test_the_example_role_in_the_docs_loads() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs/access.md").read_text()
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    r = role_from_text(example, "docs/access.md")
    assert r.name == "web-ops"
    assert not r.allow[1].allows_login("root") and r.allow[1].allows_login("deploy")
    assert r.deny[0].hosts == "pci"


def test_opsctl_reads_a_role_file_with_the_same_document() -> None:
    from fleetops.opsctl.admin import role_document, rule_lines

    doc = role_document(WEB_OPS_YAML, "web-ops.yaml", "web-ops")
    assert doc == role_from_text(WEB_OPS_YAML, "web-ops.yaml").to_dict()
    assert rule_lines(doc) == Role.from_dict(doc).describe()
    with pytest.raises(InvalidInput, match="unknown action 'comand.run'") as info:
        role_document("name: x\nallow:\n  - actions: [comand.run]\n", "x.yaml", "x")
    assert "did you mean command.run" in info.value.hint
