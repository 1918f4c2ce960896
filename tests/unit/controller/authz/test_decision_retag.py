"""Tag changes: hosts.tag before and after, and no right gained by the back door."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fleetops.common.roles import BUILTIN_ROLES, Role
from fleetops.controller.authz import authorize_retag, new_rights


@dataclass(frozen=True)
class FakeHost:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", "h-" + self.name)


def role(name: str = "r", allow: list[dict] | None = None, deny: list[dict] | None = None) -> Role:
    return Role.from_dict({"name": name, "allow": allow or [], "deny": deny or []})


TAGGER = role(
    "dev-tagger",
    allow=[{"actions": ["hosts.read", "hosts.tag"], "hosts": "env=dev"}],
)
DEV_1 = FakeHost("dev-1", {"env": "dev", "role": "db"})
DEV_2 = FakeHost("dev-2", {"env": "dev"})
PROD_1 = FakeHost("prod-1", {"env": "prod"})


def retag(host: FakeHost, **changes: str | None) -> tuple[FakeHost, dict[str, str]]:
    after = {**host.tags, **{k: v for k, v in changes.items() if v is not None}}
    return host, {k: v for k, v in after.items() if changes.get(k, "") is not None}


def test_a_change_within_scope_is_allowed() -> None:
    decision = authorize_retag([TAGGER], [retag(DEV_1, role="web"), retag(DEV_2, team="blue")], user="tom")
    assert decision.allowed and decision.phase == "before"
    assert decision.matched == ["dev-tagger/allow[0]"]


def test_a_host_outside_scope_cannot_be_tagged_and_is_not_named() -> None:
    decision = authorize_retag([TAGGER], [retag(DEV_1, team="a"), retag(PROD_1, env="dev")], user="tom")
    assert not decision.allowed and decision.phase == "before"
    assert "prod" not in decision.message
    assert decision.message == (
        "tom may not tag hosts: the target matches hosts outside your access; the whole request is refused"
    )
    assert decision.to_audit()["denied_hosts"] == ["prod-1"]


def test_a_host_cannot_be_pushed_out_of_scope() -> None:
    decision = authorize_retag([TAGGER], [retag(DEV_1, env="prod")], user="tom")
    assert not decision.allowed and decision.phase == "after"
    assert decision.message == (
        "tom may not tag hosts so that they leave the hosts tom may tag: dev-1 (no allow rule matches its new tags)"
    )
    assert "before and after" in decision.hint
    removed = authorize_retag([TAGGER], [retag(DEV_1, env=None)], user="tom")
    assert not removed.allowed and removed.phase == "after"


def test_a_deny_rule_on_the_new_tags_refuses() -> None:
    frozen = role("frozen", deny=[{"actions": ["hosts.tag"], "hosts": "frozen"}])
    decision = authorize_retag([TAGGER, frozen], [retag(DEV_1, frozen="yes")], user="tom")
    assert not decision.allowed and decision.phase == "after"
    assert "its new tags are denied by frozen/deny[0]" in decision.message
    assert decision.matched == ["frozen/deny[0]"]


def test_removing_the_tag_a_deny_rule_keys_on_gains_a_right_and_is_refused() -> None:
    ops = role(
        "dev-ops",
        allow=[{"actions": ["hosts.tag", "hosts.read", "command.run"], "hosts": "env=dev", "logins": ["deploy"]}],
        deny=[{"actions": ["command.run"], "hosts": "pci"}],
    )
    pci = FakeHost("dev-pci", {"env": "dev", "pci": "yes"})
    decision = authorize_retag([ops], [retag(pci, pci=None)], user="tom")
    assert not decision.allowed and decision.phase == "new-rights"
    assert decision.message == (
        "tom may not tag hosts so that tom gains rights on them: command.run on dev-pci; "
        "command.run as deploy on dev-pci"
    )
    assert "may not widen your own access" in decision.hint


def test_adding_the_tag_a_narrower_rule_asks_for_gains_that_right() -> None:
    web_runner = role(
        "web-runner",
        allow=[
            {"actions": ["hosts.tag"], "hosts": "env=dev"},
            {"actions": ["session.start"], "hosts": "env=dev,role=web", "logins": ["root"]},
        ],
    )
    decision = authorize_retag([web_runner], [retag(DEV_1, role="web")], user="tom")
    assert not decision.allowed and "session.start as root on dev-1" in decision.message
    # Tags no rule looks at change no right.
    assert authorize_retag([web_runner], [retag(DEV_1, owner="tom")], user="tom").allowed


def test_an_unchanged_host_is_not_decided_again() -> None:
    assert authorize_retag([TAGGER], [(DEV_2, dict(DEV_2.tags))], user="tom").allowed


@pytest.mark.parametrize("after", [{"env": "prod"}, {}, {"env": "dev", "pci": "yes"}])
def test_admin_may_make_any_change(after: dict[str, str]) -> None:
    assert authorize_retag([BUILTIN_ROLES["admin"]], [(DEV_1, after)], user="root-admin").allowed


def test_without_the_action_nothing_is_tagged() -> None:
    reader = role("reader", allow=[{"actions": ["hosts.read"]}])
    decision = authorize_retag([reader], [retag(DEV_1, team="a")], user="tom")
    assert not decision.allowed and decision.message.startswith(
        "tom may not tag hosts on dev-1 (no allow rule matches)"
    )
    assert "hosts.tag" in decision.hint


def test_new_rights_compares_every_login_a_rule_names() -> None:
    r = role(
        allow=[
            {"actions": ["command.run"], "hosts": "a", "logins": ["deploy"]},
            {"actions": ["command.run"], "hosts": "b", "logins": ["*"]},
        ]
    )
    assert new_rights([r], {}, {"a": "1"}) == ["command.run", "command.run as deploy"]
    gained = new_rights([r], {"a": "1"}, {"a": "1", "b": "1"})
    assert gained == ["command.run as logins no rule names"]  # '*': any login but root; deploy it had
    assert new_rights([r], {"a": "1", "b": "1"}, {}) == []  # losing rights is no escalation
