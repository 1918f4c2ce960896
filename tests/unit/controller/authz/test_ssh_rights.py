"""What an SSH session may do on its host besides logging in, decided from the operator's roles."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.roles import BUILTIN_ROLES, Role, Rule, destination_matches
from fleetops.controller.authz.ssh import SshRights, ssh_rights


@dataclass
class FakeHost:
    id: str = "h-1"
    name: str = "web-1"
    tags: dict[str, str] = field(default_factory=lambda: {"role": "web"})


def role(*allow: Rule, deny: tuple[Rule, ...] = ()) -> Role:
    return Role(name="r", allow=allow, deny=deny)


def test_nothing_is_allowed_by_default_not_even_with_every_action() -> None:
    assert ssh_rights([role(Rule(actions=("session.start",)))], FakeHost()) == SshRights()
    # '*' covers ssh.forward, but a rule without destinations names none.
    rights = ssh_rights([role(Rule(actions=("*",), logins=("*",)))], FakeHost())
    assert rights.forward_to == () and rights.file_transfer and rights.agent_forwarding


def test_admin_may_do_everything() -> None:
    rights = ssh_rights([BUILTIN_ROLES["admin"]], FakeHost())
    assert rights == SshRights(forward_to=("*",), forward_remote=True, agent_forwarding=True, file_transfer=True)


def test_destinations_add_up_on_the_hosts_a_rule_covers_and_deny_rules_win() -> None:
    web_db = Rule(actions=("ssh.forward",), hosts="role=web", destinations=("db.internal:5432", "127.0.0.1:8000-8099"))
    elsewhere = Rule(actions=("ssh.forward",), hosts="role=db", destinations=("*",))
    no_metrics = Rule(actions=("ssh.forward",), destinations=("127.0.0.1:8080",))
    rights = ssh_rights([role(web_db, elsewhere, deny=(no_metrics,))], FakeHost())
    assert rights.forward_to == ("db.internal:5432", "127.0.0.1:8000-8099")
    assert rights.forward_denied == ("127.0.0.1:8080",)
    assert not rights.forward_remote and not rights.file_transfer

    every_forward = Rule(actions=("ssh.forward",), hosts="role=web")
    assert ssh_rights([role(web_db, deny=(every_forward,))], FakeHost()).forward_to == ()


def test_file_transfer_remote_forwarding_and_agent_forwarding_are_rights_of_their_own() -> None:
    rights = ssh_rights([role(Rule(actions=("file.transfer", "ssh.agent"), hosts="role=web"))], FakeHost())
    assert rights.file_transfer and rights.agent_forwarding and not rights.forward_remote
    assert not ssh_rights([role(Rule(actions=("file.transfer",), hosts="role=db"))], FakeHost()).file_transfer


@pytest.mark.parametrize(
    ("pattern", "host", "port", "matches"),
    [
        ("*", "anything", 1, True),
        ("127.0.0.1:5432", "127.0.0.1", 5432, True),
        ("127.0.0.1:5432", "127.0.0.1", 5433, False),
        ("127.0.0.1:5432", "localhost", 5432, False),  # names are not resolved
        ("*.internal:*", "DB.Internal", 22, True),
        ("*.internal:*", "internal", 22, False),
        ("10.0.0.?:8000-8099", "10.0.0.7", 8099, True),
        ("10.0.0.?:8000-8099", "10.0.0.7", 8100, False),
        ("[::1]:22", "::1", 22, True),
    ],
)
def test_destination_patterns(pattern: str, host: str, port: int, matches: bool) -> None:
    assert destination_matches(pattern, host, port) is matches


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"actions": ["ssh.forward"], "destinations": ["db.internal"]}, "is not HOST:PORT"),
        ({"actions": ["ssh.forward"], "destinations": ["db:99999"]}, "no valid port"),
        ({"actions": ["ssh.forward"], "destinations": ["db:90-80"]}, "no valid port"),
        ({"actions": ["ssh.forward"], "destinations": "db:80"}, "must be a list"),
        ({"actions": ["session.start"], "destinations": ["db:80"]}, "only apply to ssh.forward"),
    ],
)
def test_bad_destinations_are_refused_naming_the_field(rule: dict[str, object], error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        Rule.from_dict(rule, "allow[0]")


def test_a_rule_keeps_destinations_only_when_it_has_some() -> None:
    assert "destinations" not in Rule(actions=("session.start",)).to_dict()
    rule = Rule.from_dict({"actions": ["ssh.forward"], "destinations": ["db:5432", "*", "x:1"]})
    assert rule.destinations == ("*",)  # '*' covers the rest
    assert Rule.from_dict(rule.to_dict()) == rule
    assert rule.describe() == "ssh.forward on every host to *"
