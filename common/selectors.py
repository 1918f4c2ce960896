"""Kubernetes-style tag selectors and tag assignments.

A selector is a comma-separated list of requirements that must *all* hold (comma means AND)::

    selector    := requirement ( "," requirement )*
    requirement := "!" key                            key absent
                 | key                                key present, any value
                 | key ( "=" | "==" ) value           key present with this value
                 | key "!=" value                     key absent, or present with another value
                 | key "in" "(" values ")"            key present with one of the values
                 | key "notin" "(" values ")"         key absent, or present with none of the values
    values      := value ( "," value )*               at least one value
    key         := 1-253 chars of [A-Za-z0-9._/-], first and last a letter or digit
    value       := 1-63 chars of [A-Za-z0-9._-], first and last a letter or digit

Whitespace is allowed around every token; keys and values are case-sensitive. ``in`` and
``notin`` are operators only right after a key, so they stay usable as keys and values.

An empty or whitespace-only selector is an error, never "every host": targeting the whole fleet
takes an explicit ``--all``. Every parse error is a :class:`SelectorError` carrying the 0-based
position of the offending character (``len(text)`` when input ended too early).

The canonical text (``str()``) writes ``=`` for ``==`` and sorts the values of ``in``/``notin``,
so ``Selector.parse(str(s)) == s`` for every selector ``s``.

Inventory facts. Keys under the reserved prefix ``inv.`` (:data:`FACT_PREFIX`) name what a host
reports about itself (:data:`INVENTORY_FACTS`, derived by :func:`inventory_facts`) rather than a
tag: ``inv.os_family=linux,inv.os_version in (11,12)``. An unknown ``inv.`` key and an upper-case
value under one are parse errors (fact values are lowercase), never a silent no-match, and no tag
key may start with ``inv.`` (:func:`validate_tag_key`). A selector matches tags against tags and
facts against facts (:meth:`Selector.matches`); access decisions pass no facts, and role selectors
may not name any (``fleetops.controller.authz.models``): what a host reports is data, not authority.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from fleetops.common.errors import InvalidInput, SelectorError
from fleetops.common.limits import SELECTOR_BYTES, TAG_KEY_CHARS, TAG_VALUE_CHARS, utf8_size

Operator: TypeAlias = Literal["=", "!=", "in", "notin", "exists", "!exists"]
_Kind: TypeAlias = Literal["key", "value"]

MAX_KEY_LENGTH = TAG_KEY_CHARS.maximum
MAX_VALUE_LENGTH = TAG_VALUE_CHARS.maximum

_ALNUM = frozenset(string.ascii_letters + string.digits)
_VALUE_CHARS = _ALNUM | frozenset("._-")
_KEY_CHARS = _VALUE_CHARS | frozenset("/")
_RULES = {"key": (_KEY_CHARS, MAX_KEY_LENGTH), "value": (_VALUE_CHARS, MAX_VALUE_LENGTH)}
_HINTS = {
    "key": f"tag keys are 1-{MAX_KEY_LENGTH} letters, digits, '.', '_', '-' or '/', starting and ending with a "
    "letter or digit, e.g. env or team.example.com/owner",
    "value": f"tag values are 1-{MAX_VALUE_LENGTH} letters, digits, '.', '_' or '-', starting and ending with a "
    "letter or digit",
}
_ASSIGN_HINT = "set a tag with KEY=VALUE and remove one with KEY-, e.g. env=prod canary-"

#: Selector keys under this prefix are inventory facts, never tags.
FACT_PREFIX = "inv."


@dataclass(frozen=True)
class Fact:
    """One inventory fact a selector can match: ``inv.<name>``, from the inventory field ``source``."""

    name: str
    source: str
    description: str
    examples: tuple[str, ...]

    @property
    def key(self) -> str:
        return FACT_PREFIX + self.name


#: Every inventory fact, by selector key (docs/targeting.md#inventory-facts is the user's copy of this table).
#: Values are the agent's report made lowercase, each run of '-' and of characters a value may not hold
#: (spaces, '/', '(') turned into one '-', and cut to 63 characters; an empty or unknown field is *absent*.
INVENTORY_FACTS: dict[str, Fact] = {
    f.key: f
    for f in (
        Fact("os_family", "os_family", "operating system family", ("linux", "darwin", "windows")),
        Fact(
            "os_name",
            "os_name",
            "operating system name",
            ("debian-gnu-linux", "ubuntu", "macos", "windows-11-pro", "windows-server-2022-datacenter"),
        ),
        Fact("os_version", "os_version", "operating system version", ("12", "22.04", "14.4.1", "10.0.22631")),
        Fact("kernel", "kernel", "kernel release", ("6.1.0-18-amd64", "23.4.0")),
        Fact("arch", "arch", "CPU architecture", ("x86_64", "arm64", "x86")),
        Fact("cpu_count", "cpu_count", "number of logical CPUs", ("2", "16")),
        Fact("hostname", "hostname", "host name the host reports (not its registered name)", ("web-1",)),
        Fact("agent_version", "agent_version", "fleetops-agent version", ("0.1.0",)),
    )
}
_FACT_HINT = "inventory facts are " + ", ".join(INVENTORY_FACTS) + " (docs/targeting.md#inventory-facts)"
_RESERVED_HINT = (
    f"tag keys may not start with {FACT_PREFIX!r}: it is reserved for inventory facts, which selectors match as "
    "inv.os_family=linux; choose another key, e.g. os"
)


def is_fact_key(key: str) -> bool:
    """Whether *key* is under the reserved inventory prefix (in any case: ``INV.x`` is no tag key either)."""
    return key[: len(FACT_PREFIX)].lower() == FACT_PREFIX


def fact_value(raw: object) -> str | None:
    """*raw* as a fact value (lowercase, selector-safe, at most 63 characters), or None when absent.

    ``"Debian GNU/Linux"`` -> ``"debian-gnu-linux"``; ``4`` -> ``"4"``; ``""``, ``0``, ``None`` and
    anything that is not a string or a positive whole number -> None.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw) if raw > 0 else None
    if not isinstance(raw, str):
        return None
    out: list[str] = []
    for ch in raw[: 4 * MAX_VALUE_LENGTH].lower():  # a hostile report is long: what is kept is 63 at most
        if ch not in _VALUE_CHARS or ch == "-":
            if out and out[-1] != "-":
                out.append("-")
        else:
            out.append(ch)
    text = "".join(out)
    start = next((i for i, ch in enumerate(text) if ch in _ALNUM), len(text))
    text = text[start : start + MAX_VALUE_LENGTH]
    while text and text[-1] not in _ALNUM:
        text = text[:-1]
    return text or None


def inventory_facts(inventory: Mapping[str, Any] | None) -> dict[str, str]:
    """The facts of a host from its stored inventory (``fleetops.agent.inventory.Inventory.to_dict``).

    Keys are selector keys (``inv.os_family``); a fact the host did not report is left out, so that
    ``inv.os_version`` (present) and ``!inv.os_version`` (absent) mean what they say.
    """
    if not isinstance(inventory, Mapping):
        return {}
    facts = {}
    for key, fact in INVENTORY_FACTS.items():
        value = fact_value(inventory.get(fact.source))
        if value is not None:
            facts[key] = value
    return facts


def _problem(kind: _Kind, text: str) -> tuple[int, str] | None:
    """Offset in *text* and reason of the first rule it breaks as a tag key/value, or None when valid."""
    allowed, limit = _RULES[kind]
    if not text:
        return 0, f"tag {kind} is empty"
    for i, ch in enumerate(text):
        if ch not in allowed:
            return i, f"tag {kind} may not contain {ch!r}"
    if text[0] not in _ALNUM:
        return 0, f"tag {kind} must start with a letter or digit"
    if text[-1] not in _ALNUM:
        return len(text) - 1, f"tag {kind} must end with a letter or digit"
    if len(text) > limit:
        return limit, f"tag {kind} is longer than {limit} characters"
    return None


def _validate(kind: _Kind, text: str) -> None:
    if (problem := _problem(kind, text)) is not None:
        raise InvalidInput(f"bad tag {kind} {text!r}: {problem[1]}", _HINTS[kind])


def validate_tag_key(key: str) -> None:
    """Raise :class:`InvalidInput` unless *key* is a valid tag key (never one under :data:`FACT_PREFIX`)."""
    _validate("key", key)
    if is_fact_key(key):
        raise InvalidInput(f"bad tag key {key!r}: the prefix {key[: len(FACT_PREFIX)]!r} is reserved", _RESERVED_HINT)


def validate_tag_value(value: str) -> None:
    """Raise :class:`InvalidInput` unless *value* is a valid tag value."""
    _validate("value", value)


@dataclass(frozen=True)
class Requirement:
    """One condition on a host's tags; ``values`` of ``in``/``notin`` are kept sorted and unique."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        arity = {"exists": 0, "!exists": 0, "=": 1, "!=": 1}.get(self.operator)
        if arity is None:
            if not self.values:
                raise ValueError(f"{self.operator!r} needs at least one value")
            object.__setattr__(self, "values", tuple(sorted(set(self.values))))
        elif len(self.values) != arity:
            raise ValueError(f"{self.operator!r} takes {arity} value(s), got {len(self.values)}")

    @property
    def is_fact(self) -> bool:
        """Whether this requirement is on an inventory fact (``inv.``) rather than a tag."""
        return is_fact_key(self.key)

    def matches(self, tags: Mapping[str, str], facts: Mapping[str, str] | None = None) -> bool:
        """Whether a host with *tags* and inventory *facts* (``inv.`` keys; None: none) satisfies this.

        A fact requirement looks only at *facts* and a tag requirement only at *tags*, whatever keys
        either mapping holds.
        """
        source = (facts or {}) if self.is_fact else tags
        present = self.key in source
        if self.operator in ("exists", "!exists"):
            return present == (self.operator == "exists")
        hit = present and source[self.key] in self.values
        return hit if self.operator in ("=", "in") else not hit  # "!=" and "notin" also match absent keys

    def __str__(self) -> str:
        if self.operator in ("exists", "!exists"):
            return self.key if self.operator == "exists" else f"!{self.key}"
        if self.operator in ("=", "!="):
            return f"{self.key}{self.operator}{self.values[0]}"
        return f"{self.key} {self.operator} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class Selector:
    """A parsed selector: a host matches when it satisfies every requirement."""

    requirements: tuple[Requirement, ...]

    def __post_init__(self) -> None:
        if not self.requirements:
            raise ValueError("a selector needs at least one requirement; an empty one never means every host")

    def matches(self, tags: Mapping[str, str], facts: Mapping[str, str] | None = None) -> bool:
        """Whether a host with *tags* and inventory *facts* (see :func:`inventory_facts`) matches.

        Access decisions pass no facts: what a host reports never decides what it is allowed.
        """
        return all(r.matches(tags, facts) for r in self.requirements)

    @property
    def fact_keys(self) -> tuple[str, ...]:
        """The inventory facts this selector names, in order, without repeats."""
        return tuple(dict.fromkeys(r.key for r in self.requirements if r.is_fact))

    def without_facts(self) -> Selector | None:
        """This selector with its fact requirements left out (None when nothing else is left: every host).

        It matches every host this one matches, and maybe more: what an authorization of a selector
        may look at, since facts are reported by the hosts themselves.
        """
        kept = tuple(r for r in self.requirements if not r.is_fact)
        if len(kept) == len(self.requirements):
            return self
        return Selector(kept) if kept else None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse *text* (see the module docstring for the grammar).

        Raises:
            InvalidInput: the text is longer than the selector limit (checked first: the error
                names the sizes and never echoes the text).
            SelectorError: the text is empty or malformed; ``position`` points at the culprit.
        """
        SELECTOR_BYTES.check(utf8_size(text))
        return _Parser(text).parse()


def parse_selector(text: str) -> Selector:
    """Same as :meth:`Selector.parse`."""
    return Selector.parse(text)


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "=", "==", "!=", "!", ",", "(", ")" or "end"
    text: str
    pos: int


class _Parser:
    """Recursive-descent parser over a lazy scanner, so the leftmost error is the one reported."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.ahead: _Token | None = None

    def error(self, message: str, position: int) -> SelectorError:
        return SelectorError(message, self.text, position)

    def peek(self) -> _Token:
        self.ahead = self.ahead or self.scan()
        return self.ahead

    def take(self) -> _Token:
        token, self.ahead = self.peek(), None
        return token

    def scan(self) -> _Token:
        text, i = self.text, self.pos
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            self.pos = i
            return _Token("end", "", i)
        j = i
        while j < len(text) and text[j] in _KEY_CHARS:
            j += 1
        if j == i:
            j = i + 2 if text[i : i + 2] in ("==", "!=") else i + 1
            if text[i:j] not in ("==", "!=", "=", "!", ",", "(", ")"):
                message = "keys and values use only letters, digits, '.', '_', '-' (and '/' in keys)"
                raise self.error(f"unexpected character {text[i]!r}: {message}", i)
        self.pos = j
        return _Token("word" if text[i] in _KEY_CHARS else text[i:j], text[i:j], i)

    def parse(self) -> Selector:
        if not self.text.strip():
            raise self.error("empty selector: use --all to target every host", 0)
        requirements = [self.requirement("")]
        while (token := self.take()).kind != "end":
            if token.kind != ",":
                raise self.error("expected ',' or end of selector", token.pos)
            requirements.append(self.requirement(" after ','"))
        return Selector(tuple(requirements))

    def requirement(self, where: str) -> Requirement:
        if self.peek().kind == "!":
            self.take()
            key = self.word("key", "a tag key after '!'")
            if (op := self.peek()).kind in ("=", "==", "!=") or op.text in ("in", "notin"):
                raise self.error("expected ',' or end of selector: '!key' takes no operator or value", op.pos)
            return Requirement(key, "!exists")
        key = self.word("key", f"a tag key or '!key'{where}")
        fact = is_fact_key(key)
        op = self.peek()
        if op.kind in ("=", "==", "!="):
            self.take()
            value = self.word("value", f"a value after {op.kind!r}", fact=fact)
            return Requirement(key, "!=" if op.kind == "!=" else "=", (value,))
        if op.kind == "word" and op.text in ("in", "notin"):
            self.take()
            return Requirement(key, "in" if op.text == "in" else "notin", self.values(op.text, fact))
        if op.kind in (",", "end"):
            return Requirement(key, "exists")
        raise self.error("expected an operator ('=', '!=', 'in', 'notin'), ',' or end of selector", op.pos)

    def word(self, kind: _Kind, expected: str, *, fact: bool = False) -> str:
        """Take the next token as a tag key or value; *expected* describes it for the error message.

        A key under ``inv.`` must be a known fact, and a value of one (*fact*) lowercase.
        """
        token = self.take()
        if token.kind != "word":
            raise self.error(f"expected {expected}", token.pos)
        if (problem := _problem(kind, token.text)) is not None:
            raise self.error(problem[1], token.pos + problem[0])
        if kind == "key" and is_fact_key(token.text) and token.text not in INVENTORY_FACTS:
            message = f"unknown inventory fact {token.text!r}"
            raise SelectorError(message, self.text, token.pos, _FACT_HINT)
        if fact and token.text != token.text.lower():
            at = next(i for i, ch in enumerate(token.text) if ch != ch.lower())
            message = f"inventory fact values are lowercase: write {token.text.lower()!r}"
            raise SelectorError(message, self.text, token.pos + at, _FACT_HINT)
        return token.text

    def values(self, op: str, fact: bool = False) -> tuple[str, ...]:
        token = self.take()
        if token.kind != "(":
            raise self.error(f"expected '(' after {op!r}", token.pos)
        if self.peek().kind == ")":
            raise self.error(f"expected a value: the list after {op!r} needs at least one", self.peek().pos)
        found = [self.word("value", "a value after '('", fact=fact)]
        while (token := self.take()).kind != ")":
            if token.kind != ",":
                raise self.error("expected ',' or ')'", token.pos)
            found.append(self.word("value", "a value after ','", fact=fact))
        return tuple(found)


def parse_tag_assignments(items: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``KEY=VALUE`` (set) and ``KEY-`` (remove) items, as in ``opsctl hosts tag HOST env=prod canary-``.

    Returns:
        The tags to set and the keys to remove (in the order given, without repeats).

    Raises:
        InvalidInput: an item is malformed, a key is given twice, or is both set and removed.
    """
    set_tags: dict[str, str] = {}
    remove: list[str] = []
    for item in items:
        key, setting, value = item.partition("=")
        if not setting:
            if not item.endswith("-"):
                raise InvalidInput(f"bad tag assignment {item!r}: expected KEY=VALUE or KEY-", _ASSIGN_HINT)
            key = item[:-1]
        checks: list[tuple[_Kind, str]] = [("key", key), ("value", value)] if setting else [("key", key)]
        for kind, text in checks:
            if (problem := _problem(kind, text)) is not None:
                raise InvalidInput(f"bad tag assignment {item!r}: {problem[1]}", f"{_HINTS[kind]}; {_ASSIGN_HINT}")
        if is_fact_key(key):
            raise InvalidInput(
                f"bad tag assignment {item!r}: the prefix {key[: len(FACT_PREFIX)]!r} is reserved", _RESERVED_HINT
            )
        if key in set_tags or (setting and key in remove):
            raise InvalidInput(f"bad tag assignment {item!r}: tag {key!r} is given twice", "give each key once")
        if setting:
            set_tags[key] = value
        elif key not in remove:
            remove.append(key)
    return set_tags, remove
