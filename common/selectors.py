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
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

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
    """Raise :class:`InvalidInput` unless *key* is a valid tag key."""
    _validate("key", key)


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

    def matches(self, tags: Mapping[str, str]) -> bool:
        """Whether a host with *tags* satisfies this requirement."""
        present = self.key in tags
        if self.operator in ("exists", "!exists"):
            return present == (self.operator == "exists")
        hit = present and tags[self.key] in self.values
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

    def matches(self, tags: Mapping[str, str]) -> bool:
        return all(r.matches(tags) for r in self.requirements)

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
        op = self.peek()
        if op.kind in ("=", "==", "!="):
            self.take()
            value = self.word("value", f"a value after {op.kind!r}")
            return Requirement(key, "!=" if op.kind == "!=" else "=", (value,))
        if op.kind == "word" and op.text in ("in", "notin"):
            self.take()
            return Requirement(key, "in" if op.text == "in" else "notin", self.values(op.text))
        if op.kind in (",", "end"):
            return Requirement(key, "exists")
        raise self.error("expected an operator ('=', '!=', 'in', 'notin'), ',' or end of selector", op.pos)

    def word(self, kind: _Kind, expected: str) -> str:
        """Take the next token as a tag key or value; *expected* describes it for the error message."""
        token = self.take()
        if token.kind != "word":
            raise self.error(f"expected {expected}", token.pos)
        if (problem := _problem(kind, token.text)) is not None:
            raise self.error(problem[1], token.pos + problem[0])
        return token.text

    def values(self, op: str) -> tuple[str, ...]:
        token = self.take()
        if token.kind != "(":
            raise self.error(f"expected '(' after {op!r}", token.pos)
        if self.peek().kind == ")":
            raise self.error(f"expected a value: the list after {op!r} needs at least one", self.peek().pos)
        found = [self.word("value", "a value after '('")]
        while (token := self.take()).kind != ")":
            if token.kind != ",":
                raise self.error("expected ',' or ')'", token.pos)
            found.append(self.word("value", "a value after ','"))
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
        if key in set_tags or (setting and key in remove):
            raise InvalidInput(f"bad tag assignment {item!r}: tag {key!r} is given twice", "give each key once")
        if setting:
            set_tags[key] = value
        elif key not in remove:
            remove.append(key)
    return set_tags, remove
