"""Selectors as sets of hosts: does one selector lie within another, could two ever overlap?

A rule's ``hosts`` selector grants (or denies) an action on the hosts it matches. A deferred task
(a maintenance window's) targets a *selector*, resolved only when it runs, so "which hosts does it
match today" proves nothing: an empty match passes every host-by-host check, and tomorrow an admin
tags a host into it. So a task's selector is checked as a selector, against every host that could
ever match it (docs/access.md#selectors-as-selectors).

The model. A host is its tags: a mapping from keys to values, any key absent or present with any
value. A requirement speaks of one key and admits a set of "states" of that key, where a state is
*absent* (written ``None`` here) or a value::

    key            every value, not absent         key!=v        absent, or any value but v
    !key           absent only                     key in (S)    the values S
    key=v          the value v                     key notin (S) absent, or any value not in S

Each such set is *finite* (``=``, ``in``, ``!key``) or *cofinite* (everything but a finite set:
``key``, ``!=``, ``notin``). A selector ANDs its requirements, so per key it admits the
intersection of its requirements' sets (every state of a key it does not name), and the hosts it
matches are the product of those per-key sets over all keys. Products of non-empty sets compare
factor by factor, which gives exact answers:

* ``within(a, b)``: every host that could match ``a`` matches ``b``. True when ``a`` can match
  nothing at all; otherwise for every key, ``a``'s set is a subset of ``b``'s. A cofinite set is
  never within a finite one (values are unbounded).
* ``may_overlap(a, b)``: some host could match both: for every key the two sets intersect.

These are exact for the grammar of ``fleetops.common.selectors``; they never consult hosts.

Inventory facts (``inv.os_family=linux``) are reported by the hosts themselves, so they never help a
selector's authorization: on the side of a *target* (``narrow``, both sides of ``may_overlap``,
``satisfiable``) fact requirements are left out, which gives a selector matching every host the
target could match and maybe more (sound: a target can only be refused more, never allowed more).
On the side of a *rule* (``broad``), which is matched against operator-set tags without facts
(roles may not name facts at all, ``fleetops.controller.authz.models``), a fact is absent on every
host: a fact requirement that admits "absent" is always true and left out, any other makes the rule
match nothing. Where a fact requirement is left out these answers are conservative, not exact.
:func:`within_any` also splits ``a`` on its finite keys (``env in (dev,test)`` is the two
selectors ``env=dev`` and ``env=test``) so that a selector covered by the union of several rules,
one case each, is accepted; the split is bounded (``MAX_CASES``) and refuses when exceeded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fleetops.common.selectors import Requirement, Selector

#: The "absent" state of a key.
ABSENT = None
#: At most this many cases are tried when splitting a selector over several rules.
MAX_CASES = 256

State = str | None


@dataclass(frozen=True)
class KeySet:
    """The states one key may be in: ``members`` when finite, else everything but ``members``."""

    finite: bool
    members: frozenset[State]

    @property
    def empty(self) -> bool:
        return self.finite and not self.members

    def __and__(self, other: KeySet) -> KeySet:
        if self.finite and other.finite:
            return KeySet(True, self.members & other.members)
        if self.finite:
            return KeySet(True, self.members - other.members)
        if other.finite:
            return KeySet(True, other.members - self.members)
        return KeySet(False, self.members | other.members)

    def __le__(self, other: KeySet) -> bool:
        """Subset: every state of *self* is one of *other*."""
        if self.empty:
            return True
        if self.finite:
            return not (self.members - other.members) if other.finite else not (self.members & other.members)
        if other.finite:
            return False  # everything but a few values never fits in a finite set
        return other.members <= self.members


EVERY_STATE = KeySet(False, frozenset())


def key_set(requirement: Requirement) -> KeySet:
    """The states of ``requirement.key`` that satisfy *requirement*."""
    op, values = requirement.operator, frozenset[State](requirement.values)
    if op == "exists":
        return KeySet(False, frozenset({ABSENT}))
    if op == "!exists":
        return KeySet(True, frozenset({ABSENT}))
    if op in ("=", "in"):
        return KeySet(True, values)
    if op in ("!=", "notin"):
        return KeySet(False, values)
    raise ValueError(f"unknown selector operator {op!r}")  # pragma: no cover - the parser makes no other


def _admits_absent(states: KeySet) -> bool:
    return (ABSENT in states.members) == states.finite


def key_sets(selector: Selector, *, rule: bool = False) -> dict[str, KeySet]:
    """Per tag key named in *selector*, the states it admits (keys not named admit every state).

    Inventory facts are left out, unless *rule*: then *selector* is a rule's, matched without facts,
    and a fact requirement that does not admit "absent" makes it match nothing (see the module text).
    """
    sets: dict[str, KeySet] = {}
    for requirement in selector.requirements:
        own = key_set(requirement)
        if requirement.is_fact:
            if rule and not _admits_absent(own):
                own = KeySet(True, frozenset())  # never true without facts: the rule matches no host
            else:
                continue
        sets[requirement.key] = sets[requirement.key] & own if requirement.key in sets else own
    return sets


def satisfiable(selector: Selector) -> bool:
    """Whether some host could ever match *selector* (``env=a,env=b`` never can).

    Conservative for facts: ``inv.arch=x86,inv.arch=arm64`` counts as satisfiable.
    """
    return not any(s.empty for s in key_sets(selector).values())


def _within(narrow: dict[str, KeySet], broad: dict[str, KeySet]) -> bool:
    if any(s.empty for s in narrow.values()):
        return True
    return all(narrow.get(key, EVERY_STATE) <= states for key, states in broad.items())


def within(narrow: Selector, broad: Selector | None) -> bool:
    """Whether every host that could match *narrow* matches *broad* (``None``: every host)."""
    return broad is None or _within(key_sets(narrow), key_sets(broad, rule=True))


def may_overlap(a: Selector | None, b: Selector | None) -> bool:
    """Whether some host could match both (``None``: every host). Exact for tags, never "maybe".

    Facts are left out on both sides, so that an answer of "no" is always right (a deny rule is
    decided with this: "could overlap" refuses).
    """
    sa = key_sets(a) if a is not None else {}
    sb = key_sets(b) if b is not None else {}
    if any(s.empty for s in (*sa.values(), *sb.values())):
        return False
    return all(not (sa.get(k, EVERY_STATE) & sb.get(k, EVERY_STATE)).empty for k in sa.keys() | sb.keys())


def _cases(sets: dict[str, KeySet]) -> Iterable[dict[str, KeySet]] | None:
    """*sets* split into one case per combination of its finite keys' states; None when too many."""
    finite = sorted(k for k, s in sets.items() if s.finite and len(s.members) > 1)
    total = 1
    for key in finite:
        total *= len(sets[key].members)
        if total > MAX_CASES:
            return None
    choices = [sorted(sets[k].members, key=lambda m: (m is not None, m or "")) for k in finite]
    return (
        {**sets, **{k: KeySet(True, frozenset({state})) for k, state in zip(finite, combo, strict=True)}}
        for combo in itertools.product(*choices)
    )


def within_any(narrow: Selector, broad: Sequence[Selector | None]) -> bool:
    """Whether every host that could match *narrow* matches at least one of *broad*.

    Tries one rule for the whole selector first, then one rule per case of its finite keys (at most
    ``MAX_CASES`` cases). Sound, and conservative where it stops: a selector only a more clever
    split would cover (a cofinite key spread over several rules) is refused.
    """
    if any(b is None for b in broad):
        return True
    targets = [key_sets(b, rule=True) for b in broad if b is not None]
    mine = key_sets(narrow)
    if any(_within(mine, t) for t in targets):
        return True
    cases = _cases(mine)
    if cases is None:
        return False
    return all(any(_within(case, t) for t in targets) for case in cases)
