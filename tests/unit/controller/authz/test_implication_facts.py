"""Inventory facts never widen access: roles may not name them, and a selector with facts is
authorized as the wider selector without them.

Soundness is checked by brute force over hosts that have tags *and* facts: a rule is matched on
tags alone (as ``authz.decision`` does), a target on both (as ``FleetService`` resolves it).
"""

from __future__ import annotations

import itertools

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.roles import Role
from fleetops.common.selectors import Selector
from fleetops.controller.authz import authorize_selector, may_overlap, satisfiable, within, within_any

_TAGS = {"env": ("dev", "prod"), "tier": ("pay",)}
_FACTS = {"inv.os_family": ("linux", "windows"), "inv.arch": ("x86_64",)}


def _mappings(values: dict[str, tuple[str, ...]]) -> list[dict[str, str]]:
    return [
        {k: v for k, v in zip(values, combo, strict=True) if v is not None}
        for combo in itertools.product(*[(None, *vals) for vals in values.values()])
    ]


# Every host: any tags and any facts. A forged "inv." tag is in the mix too: it must change nothing.
HOSTS = [
    (tags, facts)
    for tags in [*_mappings(_TAGS), {"env": "dev", "inv.os_family": "linux"}]
    for facts in _mappings(_FACTS)
]


def S(text: str) -> Selector:
    return Selector.parse(text)


def target_hosts(target: str) -> list[tuple[dict[str, str], dict[str, str]]]:
    return [(tags, facts) for tags, facts in HOSTS if S(target).matches(tags, facts)]


TARGETS = [
    "inv.os_family=linux",
    "inv.os_family=linux,env=dev",
    "env=dev,inv.os_family!=windows,tier!=pay",
    "env in (dev,prod),inv.arch,!tier",
    "!inv.arch,env=prod",
    "inv.os_family=linux,inv.os_family=windows",  # matches nothing, but is not proven so
    "inv.os_family=linux,env=dev,env=prod",  # matches nothing, proven by the tags
]
RULES = ["env=dev", "env in (dev,prod)", "env=dev,tier!=pay", "tier=pay", "!tier", "env"]


@pytest.mark.parametrize(("target", "rule"), list(itertools.product(TARGETS, RULES)))
def test_within_is_never_claimed_for_a_host_the_rule_does_not_cover(target: str, rule: str) -> None:
    if within(S(target), S(rule)):
        assert all(S(rule).matches(tags) for tags, _ in target_hosts(target))
    if within_any(S(target), [S(rule), S("env=prod")]):
        assert all(S(rule).matches(tags) or tags.get("env") == "prod" for tags, _ in target_hosts(target))


@pytest.mark.parametrize(("target", "rule"), list(itertools.product(TARGETS, RULES)))
def test_no_overlap_is_never_claimed_when_a_host_matches_both(target: str, rule: str) -> None:
    if any(S(rule).matches(tags) for tags, _ in target_hosts(target)):
        assert may_overlap(S(rule), S(target)) and may_overlap(S(target), S(rule))


@pytest.mark.parametrize("target", TARGETS)
def test_satisfiable_is_never_denied_for_a_target_that_matches(target: str) -> None:
    if target_hosts(target):
        assert satisfiable(S(target))


@pytest.mark.parametrize(
    ("target", "rule", "expected"),
    [
        ("inv.os_family=linux,env=dev", "env=dev", True),  # the facts only narrow it
        ("inv.os_family=linux", "env=dev", False),  # any host at all could report linux
        ("inv.os_family=linux", "env", False),
        ("env=dev", "env=dev", True),
        # A rule is matched without facts, so a fact in one (none can be made, but say) is absent:
        ("env=dev", "env=dev,!inv.arch", True),  # always true without facts
        ("env=dev", "env=dev,inv.arch=x86_64", False),  # never true: the rule covers nothing
        ("env=dev", "inv.arch notin (x86_64)", True),
    ],
)
def test_within_with_facts(target: str, rule: str, expected: bool) -> None:
    assert within(S(target), S(rule)) is expected
    assert within_any(S(target), [S(rule)]) is expected


DEV = Role.from_dict(
    {
        "name": "dev",
        "allow": [{"actions": ["command.run"], "hosts": "env=dev", "logins": ["deploy"]}],
        "deny": [{"actions": ["*"], "hosts": "tier=pay"}],
    }
)


@pytest.mark.parametrize(
    ("selector", "allowed", "says"),
    [
        ("env=dev,tier!=pay,inv.os_family=linux", True, "dev/allow[0]"),
        ("inv.os_family=linux,tier!=pay", False, "env=dev"),  # facts do not stand in for the role's tags
        ("env=dev,inv.os_family=linux", False, "tier=pay"),  # could still reach a denied host
        ("env=dev,inv.os_family=linux,inv.os_family=windows", False, "tier=pay"),  # not proven empty
        ("env=dev,env=prod,inv.arch=x86_64", True, "can match no host"),
    ],
)
def test_authorize_selector_decides_the_selector_without_its_facts(selector: str, allowed: bool, says: str) -> None:
    decision = authorize_selector([DEV], "command.run", S(selector), login="deploy", user="alice")
    assert decision.allowed is allowed, decision.reason
    assert says in decision.reason
    assert decision.to_audit()["selector"] == str(S(selector))  # the audit names what was asked for


@pytest.mark.parametrize("hosts", ["inv.os_family=linux", "env=dev,inv.arch in (x86_64)", "!inv.hostname"])
@pytest.mark.parametrize("kind", ["allow", "deny"])
def test_a_role_may_not_select_hosts_by_facts(hosts: str, kind: str) -> None:
    document = {"name": "linux-ops", kind: [{"actions": ["command.run"], "hosts": hosts}]}
    with pytest.raises(InvalidInput) as info:
        Role.from_dict(document)
    fact = S(hosts).fact_keys[0]
    assert f"{kind}[0].hosts: {fact} is an inventory fact, reported by the hosts themselves" in info.value.message
    assert "operator-set tags only" in info.value.message
    assert "opsctl hosts tag" in info.value.hint


def test_the_refusal_names_every_fact_of_the_selector() -> None:
    with pytest.raises(InvalidInput, match=r"inv\.os_family, inv\.arch are inventory facts"):
        Role.from_dict({"name": "x", "allow": [{"actions": ["hosts.read"], "hosts": "inv.os_family=linux,inv.arch"}]})
