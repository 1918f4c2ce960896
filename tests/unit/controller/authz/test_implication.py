"""Selectors as sets of hosts: within (implication), overlap, and decisions on a selector.

Every case is also checked against brute force over a small universe of hosts: a "within" must
never be claimed when some host matches the narrow selector and not the broad one (soundness), and
"may overlap" must equal "some host matches both" (exactness).
"""

from __future__ import annotations

import itertools

import pytest

from fleetops.common.roles import Role
from fleetops.common.selectors import Selector
from fleetops.controller.authz import authorize_selector, may_overlap, satisfiable, within, within_any
from fleetops.controller.authz.implication import MAX_CASES

# Every host over keys env/role/tier with values from a few names, each key possibly absent.
_VALUES = {"env": ("dev", "test", "prod", "other"), "role": ("web", "db", "other"), "tier": ("pay", "other")}
UNIVERSE = [
    {k: v for k, v in zip(_VALUES, combo, strict=True) if v is not None}
    for combo in itertools.product(*[(None, *vals) for vals in _VALUES.values()])
]


def S(text: str) -> Selector:
    return Selector.parse(text)


def brute_within(a: str, b: str) -> bool:
    return all(S(b).matches(h) for h in UNIVERSE if S(a).matches(h))


def brute_overlap(a: str, b: str) -> bool:
    return any(S(a).matches(h) and S(b).matches(h) for h in UNIVERSE)


WITHIN = [
    # (task selector, role selector, within?)
    ("env=dev,role=web", "env=dev", True),
    ("role=web", "env=dev", False),  # the case: could match hosts of any env
    ("env=dev", "env=dev", True),
    ("env==dev", "env=dev", True),
    ("env=dev", "env=dev,role=web", False),
    ("env in (dev)", "env=dev", True),
    ("env in (dev,test)", "env in (dev,test,prod)", True),
    ("env in (dev,prod)", "env in (dev,test)", False),
    ("env=dev", "env in (dev,test)", True),
    ("env in (dev,test)", "env=dev", False),
    ("env=dev", "env!=prod", True),
    ("env!=prod", "env=dev", False),
    ("!env", "env!=prod", True),  # absent satisfies !=
    ("!env", "env notin (prod)", True),
    ("!env", "env", False),
    ("env", "env!=prod", False),  # env=prod exists
    ("env,env!=prod", "env!=prod", True),
    ("env notin (prod,test)", "env!=prod", True),
    ("env!=prod", "env notin (prod,test)", False),
    ("env notin (prod)", "env notin (prod)", True),
    ("env=dev", "env", True),
    ("env in (dev,test)", "env", True),
    ("env", "env", True),
    ("env!=prod", "env", False),  # absent matches != but not exists
    ("env", "!env", False),
    ("!env", "!env", True),
    ("!env,role=web", "role=web", True),
    ("env=dev", "!tier", False),
    ("env=dev,!tier", "!tier", True),
    ("env=dev,tier=pay", "tier notin (pay)", False),
    ("env=dev,tier!=pay", "tier notin (pay)", True),
    ("env=dev,env=prod", "role=db", True),  # matches nothing, ever: vacuously within
    ("env in (dev,test),env notin (dev,test)", "role=db", True),
    ("role=web", "role=web,env", False),
    ("env=dev,role in (web,db)", "role", True),
    ("env=dev", "env=dev,env!=prod", True),
    ("env notin (dev)", "env!=dev,env!=prod", False),
    ("env notin (dev,prod)", "env!=dev,env!=prod", True),
]


@pytest.mark.parametrize(("task", "role", "expected"), WITHIN)
def test_within(task: str, role: str, expected: bool) -> None:
    assert within(S(task), S(role)) is expected
    assert brute_within(task, role) or not expected  # never claims what a host disproves
    assert within(S(task), None)  # no host restriction: everything is within


OVERLAP = [
    ("env=dev", "env=prod", False),
    ("env=dev", "env=dev", True),
    ("env=dev", "role=web", True),  # a host could have both
    ("env=dev", "tier=pay", True),
    ("env=dev,tier!=pay", "tier=pay", False),
    ("env=dev,!tier", "tier=pay", False),
    ("env=dev,!tier", "tier", False),
    ("env=dev,!tier", "tier!=pay", True),  # absent matches !=
    ("env in (dev,test)", "env notin (dev,test)", False),
    ("env in (dev,test)", "env notin (dev)", True),
    ("env!=dev", "env!=prod", True),
    ("env notin (dev)", "env in (dev)", False),
    ("!env", "env!=dev", True),
    ("!env", "env notin (dev,prod)", True),
    ("!env", "env=dev", False),
    ("env", "env!=dev", True),
    ("env=dev,env=prod", "role=web", False),  # matches nothing
    ("role=web", "env=dev,env=prod", False),
]


@pytest.mark.parametrize(("a", "b", "expected"), OVERLAP)
def test_may_overlap_is_exact(a: str, b: str, expected: bool) -> None:
    assert may_overlap(S(a), S(b)) is expected is may_overlap(S(b), S(a))
    assert brute_overlap(a, b) is expected
    assert may_overlap(S(a), None) is satisfiable(S(a))  # "every host" overlaps whatever can match


def test_every_pair_of_sample_selectors_agrees_with_brute_force() -> None:
    samples = sorted({s for row in (*WITHIN, *OVERLAP) for s in row[:2]})
    for a, b in itertools.product(samples, repeat=2):
        assert may_overlap(S(a), S(b)) == brute_overlap(a, b), (a, b)
        if within(S(a), S(b)):
            assert brute_within(a, b), (a, b)


@pytest.mark.parametrize(
    ("task", "rules", "expected"),
    [
        ("env in (dev,test)", ["env=dev", "env=test"], True),  # one rule per case
        ("env in (dev,test),role=web", ["env=dev", "env=test,role in (web,db)"], True),
        ("env in (dev,test,prod)", ["env=dev", "env=test"], False),
        ("env in (dev,test),role in (web,db)", ["env=dev", "env=test,role=web"], False),
        ("env", ["env=dev", "env!=dev"], False),  # true, but beyond the split: refused (conservative)
        ("role=web", ["env=dev", "role=web"], True),
    ],
)
def test_within_any_splits_on_listed_values(task: str, rules: list[str], expected: bool) -> None:
    assert within_any(S(task), [S(r) for r in rules]) is expected
    if expected:
        assert all(any(S(r).matches(h) for r in rules) for h in UNIVERSE if S(task).matches(h))


def test_within_any_refuses_when_the_split_is_too_large() -> None:
    values = ",".join(f"v{i}" for i in range(MAX_CASES + 1))
    rules = [S(f"k=v{i}") for i in range(MAX_CASES + 1)]
    assert not within_any(S(f"k in ({values})"), rules)
    assert within_any(S(f"k in ({values})"), [*rules, None])


def test_satisfiable() -> None:
    assert satisfiable(S("env=dev,role=web"))
    assert not satisfiable(S("env=dev,env=prod"))
    assert not satisfiable(S("env,!env"))
    assert not satisfiable(S("env in (a,b),env notin (a,b)"))
    assert satisfiable(S("env!=a,env!=b"))


# -- decisions on a selector ---------------------------------------------------------------------

DEV = Role.from_dict(
    {
        "name": "dev",
        "allow": [
            {"actions": ["command.run"], "hosts": "env=dev", "logins": ["deploy"]},
            {"actions": ["patch.scan"], "hosts": "env in (dev,test)"},
        ],
        "deny": [{"actions": ["*"], "hosts": "tier=pay"}],
    }
)
EVERYWHERE = Role.from_dict({"name": "ops", "allow": [{"actions": ["command.run"], "logins": ["deploy"]}]})
MANAGER = Role.from_dict({"name": "manager", "allow": [{"actions": ["window.manage"]}]})
ADMIN = Role.from_dict({"name": "root-ops", "allow": [{"actions": ["*"], "logins": ["*", "root"]}]})


@pytest.mark.parametrize(
    ("roles", "action", "selector", "login", "allowed", "says"),
    [
        ([DEV], "command.run", "env=dev,tier!=pay", "deploy", True, "dev/allow[0]"),
        ([DEV], "command.run", "env=dev,!tier,role=web", "deploy", True, "dev/allow[0]"),
        ([DEV], "command.run", "env=dev", "deploy", False, "tier=pay"),  # could reach a denied host
        ([DEV], "command.run", "role=web,tier!=pay", "deploy", False, "env=dev"),  # hint names the rule
        ([DEV], "command.run", "env=dev,tier!=pay", "root", False, "root"),
        ([DEV], "command.run", "env=dev,tier!=pay", "", False, "root"),  # agent's account = root
        ([DEV], "command.run", None, "deploy", False, "every host"),
        ([DEV], "patch.scan", "env in (dev,test),tier notin (pay)", None, True, "dev/allow[1]"),
        ([DEV], "patch.install", "env=dev,tier!=pay", None, False, "no allow rule"),
        ([EVERYWHERE], "command.run", None, "deploy", True, "ops/allow[0]"),
        ([EVERYWHERE], "command.run", "role=web", "deploy", True, "ops/allow[0]"),
        ([EVERYWHERE, DEV], "command.run", "role=web", "deploy", False, "denied"),  # deny wins
        ([MANAGER], "command.run", "env=dev", "deploy", False, "no allow rule"),
        ([], "command.run", "env=dev", "deploy", False, "no roles"),
        ([ADMIN], "command.run", None, "", True, "root-ops/allow[0]"),
        ([DEV], "command.run", "env=dev,env=prod", "deploy", True, "can match no host"),
    ],
)
def test_authorize_selector(
    roles: list[Role], action: str, selector: str | None, login: str | None, allowed: bool, says: str
) -> None:
    decision = authorize_selector(roles, action, S(selector) if selector else None, login=login, user="alice")
    assert decision.allowed is allowed, decision.reason
    assert says in decision.reason
    audit = decision.to_audit()
    assert audit["allowed"] is allowed and audit["selector"] == (selector and str(S(selector)) or "--all")


def test_a_refusal_suggests_a_selector_that_would_pass() -> None:
    decision = authorize_selector([DEV], "command.run", S("role=web"), login="deploy", user="alice")
    assert not decision and "--target 'role=web,tier!=pay'" in decision.hint  # away from the deny first
    narrowed = authorize_selector([DEV], "command.run", S("role=web,tier!=pay"), login="deploy", user="alice")
    assert not narrowed and "--target 'role=web,tier!=pay,env=dev'" in narrowed.hint
    final = authorize_selector([DEV], "command.run", S("role=web,tier!=pay,env=dev"), login="deploy", user="alice")
    assert final.allowed


def test_global_actions_are_not_decided_on_selectors() -> None:
    with pytest.raises(ValueError, match="not host-scoped"):
        authorize_selector([ADMIN], "window.manage", S("env=dev"))
