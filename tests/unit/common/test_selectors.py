"""Tag selectors: matching, canonical text, error positions and tag assignments."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput, SelectorError
from fleetops.common.selectors import (
    Requirement,
    Selector,
    parse_selector,
    parse_tag_assignments,
    validate_tag_key,
    validate_tag_value,
)

PROD_WEB = {"env": "prod", "role": "web"}
STAGING_API = {"env": "staging", "role": "api", "canary": "true"}
NO_TAGS: dict[str, str] = {}

MATCH_CASES = [
    # (selector, tags, expected)
    ("env=prod", PROD_WEB, True),
    ("env=prod", STAGING_API, False),
    ("env=prod", NO_TAGS, False),
    ("env==prod", PROD_WEB, True),
    ("env==prod", STAGING_API, False),
    ("env=Prod", PROD_WEB, False),  # values are case-sensitive
    ("Env=prod", PROD_WEB, False),  # keys are case-sensitive
    ("env!=prod", PROD_WEB, False),
    ("env!=prod", STAGING_API, True),
    ("env!=prod", NO_TAGS, True),  # absent key matches !=, as in Kubernetes
    ("role in (web,api)", PROD_WEB, True),
    ("role in (web,api)", STAGING_API, True),
    ("role in (db)", PROD_WEB, False),
    ("role in (web)", NO_TAGS, False),
    ("role notin (web)", PROD_WEB, False),
    ("role notin (web)", STAGING_API, True),
    ("role notin (web,api)", STAGING_API, False),
    ("role notin (web)", NO_TAGS, True),  # absent key matches notin, as in Kubernetes
    ("canary", STAGING_API, True),
    ("canary", PROD_WEB, False),
    ("canary", NO_TAGS, False),
    ("!canary", STAGING_API, False),
    ("!canary", PROD_WEB, True),
    ("!canary", NO_TAGS, True),
    ("env=prod,role=web", PROD_WEB, True),
    ("env=prod,role=api", PROD_WEB, False),  # comma is AND
    ("env in (prod,staging),!canary", PROD_WEB, True),
    ("env in (prod,staging),!canary", STAGING_API, False),
    ("team.example.com/owner=ops", {"team.example.com/owner": "ops"}, True),
    ("team.example.com/owner=ops", {"owner": "ops"}, False),
    ("in in (in),notin", {"in": "in", "notin": "x"}, True),  # operator words stay usable as keys/values
    ("  env = prod ,role  in(  web , api )  , ! canary ", PROD_WEB, True),
]


@pytest.mark.parametrize(("text", "tags", "expected"), MATCH_CASES)
def test_matches(text: str, tags: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(tags) is expected


PARSE_CASES = [
    ("env=prod", [Requirement("env", "=", ("prod",))]),
    ("env==prod", [Requirement("env", "=", ("prod",))]),
    ("env!=prod", [Requirement("env", "!=", ("prod",))]),
    ("role in (web,api,web)", [Requirement("role", "in", ("api", "web"))]),
    ("role notin (b,a)", [Requirement("role", "notin", ("a", "b"))]),
    ("canary", [Requirement("canary", "exists", ())]),
    ("!canary", [Requirement("canary", "!exists", ())]),
    ("a=1,!b,c", [Requirement("a", "=", ("1",)), Requirement("b", "!exists", ()), Requirement("c", "exists", ())]),
]


@pytest.mark.parametrize(("text", "requirements"), PARSE_CASES)
def test_parse_structure(text: str, requirements: list[Requirement]) -> None:
    assert Selector.parse(text) == Selector(tuple(requirements))


CANONICAL_CASES = [
    ("env=prod", "env=prod"),
    (" env == prod ", "env=prod"),
    ("env != prod", "env!=prod"),
    ("role in ( web , api )", "role in (api,web)"),
    ("role notin (web,api,web)", "role notin (api,web)"),
    ("canary", "canary"),
    ("! canary", "!canary"),
    ("team.example.com/owner=ops , tier in (b,a),!x", "team.example.com/owner=ops,tier in (a,b),!x"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_CASES)
def test_canonical_round_trip(text: str, canonical: str) -> None:
    selector = parse_selector(text)
    assert str(selector) == canonical
    assert parse_selector(str(selector)) == selector
    assert str(parse_selector(canonical)) == canonical


@pytest.mark.parametrize("text", [text for text, _, _ in MATCH_CASES])
def test_round_trip_keeps_meaning(text: str) -> None:
    selector = parse_selector(text)
    again = parse_selector(str(selector))
    assert again == selector
    for tags in (PROD_WEB, STAGING_API, NO_TAGS):
        assert again.matches(tags) == selector.matches(tags)


def test_requirement_normalizes_values_and_checks_arity() -> None:
    assert Requirement("role", "in", ("web", "api", "web")).values == ("api", "web")
    assert str(Requirement("role", "notin", ("web", "api"))) == "role notin (api,web)"
    with pytest.raises(ValueError):
        Requirement("role", "in", ())
    with pytest.raises(ValueError):
        Requirement("env", "=", ())
    with pytest.raises(ValueError):
        Requirement("env", "exists", ("x",))


def test_selector_without_requirements_is_refused() -> None:
    with pytest.raises(ValueError):
        Selector(())


ERROR_CASES = [
    # (selector, position, text the message must contain)
    ("", 0, "empty selector: use --all to target every host"),
    ("   ", 0, "empty selector: use --all to target every host"),
    ("env=prod,,role=web", 9, "expected a tag key or '!key' after ','"),
    ("env=prod,", 9, "expected a tag key or '!key' after ','"),
    ("env=prod,  ", 11, "expected a tag key or '!key' after ','"),
    (",env=prod", 0, "expected a tag key or '!key'"),
    ("role in (web,", 13, "expected a value after ','"),
    ("role in (web", 12, "expected ',' or ')'"),
    ("role in (web api)", 13, "expected ',' or ')'"),
    ("role in (web,,api)", 13, "expected a value after ','"),
    ("role in ()", 9, "expected a value"),
    ("role notin ( )", 13, "expected a value"),
    ("role in web", 8, "expected '(' after 'in'"),
    ("role notin", 10, "expected '(' after 'notin'"),
    ("env=pr@d", 6, "unexpected character '@'"),
    ("env=prod;role=web", 8, "unexpected character ';'"),
    ("env=", 4, "expected a value after '='"),
    ("env==", 5, "expected a value after '=='"),
    ("env!=", 5, "expected a value after '!='"),
    ("env===prod", 5, "expected a value after '=='"),
    ("env=prod role=web", 9, "expected ',' or end of selector"),
    ("env=prod)", 8, "expected ',' or end of selector"),
    ("env prod", 4, "expected an operator"),
    ("env(", 3, "expected an operator"),
    ("!", 1, "expected a tag key after '!'"),
    ("! =x", 2, "expected a tag key after '!'"),
    ("!env=prod", 4, "'!key' takes no operator or value"),
    ("!env in (a)", 5, "'!key' takes no operator or value"),
    ("=prod", 0, "expected a tag key or '!key'"),
    ("-env=prod", 0, "tag key must start with a letter or digit"),
    ("env-=prod", 3, "tag key must end with a letter or digit"),
    ("env=-prod", 4, "tag value must start with a letter or digit"),
    ("env=prod.", 8, "tag value must end with a letter or digit"),
    ("a/b=c/d", 5, "tag value may not contain '/'"),
    ("x" * 254, 253, "tag key is longer than 253 characters"),
    ("k=" + "v" * 64, 65, "tag value is longer than 63 characters"),
    ("k in (a," + "v" * 64 + ")", 71, "tag value is longer than 63 characters"),
    ("env=prod,\u00e9t\u00e9=x", 9, "unexpected character '\u00e9'"),
]


@pytest.mark.parametrize(("text", "position", "expected"), ERROR_CASES)
def test_errors_point_at_the_culprit(text: str, position: int, expected: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    error = caught.value
    assert error.position == position
    assert error.selector == text
    assert expected in error.message
    assert f"\n  {text}\n  {' ' * position}^" in error.message
    assert f"column {position + 1}" in error.message
    assert error.hint  # the default "selectors look like ..." hint
    assert isinstance(error, InvalidInput)


def test_empty_selector_is_never_everything() -> None:
    for text in ("", " ", "\t\n"):
        with pytest.raises(SelectorError, match="use --all"):
            Selector.parse(text)


def test_tag_key_and_value_rules() -> None:
    for key in ("env", "a", "team.example.com/owner", "k8s_io-x", "x" * 253, "A1"):
        validate_tag_key(key)
    for value in ("prod", "1", "v1.2-rc_3", "x" * 63):
        validate_tag_value(value)
    for key in ("", "-env", "env-", "e nv", "env=", "x" * 254, "\u00e9t\u00e9", "/env"):
        with pytest.raises(InvalidInput) as caught:
            validate_tag_key(key)
        assert repr(key) in caught.value.message
        assert caught.value.hint
    for value in ("", "a/b", ".prod", "prod_", "x" * 64, "pr od"):
        with pytest.raises(InvalidInput) as caught:
            validate_tag_value(value)
        assert repr(value) in caught.value.message
        assert caught.value.hint


ASSIGNMENT_CASES = [
    ([], {}, []),
    (["env=prod"], {"env": "prod"}, []),
    (["env=prod", "role=web"], {"env": "prod", "role": "web"}, []),
    (["canary-"], {}, ["canary"]),
    (["env=prod", "canary-", "old-tag-"], {"env": "prod"}, ["canary", "old-tag"]),
    (["canary-", "canary-"], {}, ["canary"]),
    (["team.example.com/owner=ops"], {"team.example.com/owner": "ops"}, []),
]


@pytest.mark.parametrize(("items", "set_tags", "remove"), ASSIGNMENT_CASES)
def test_parse_tag_assignments(items: list[str], set_tags: dict[str, str], remove: list[str]) -> None:
    assert parse_tag_assignments(items) == (set_tags, remove)


def test_parse_tag_assignments_accepts_any_iterable() -> None:
    assert parse_tag_assignments(iter(["a=1", "b-"])) == ({"a": "1"}, ["b"])


BAD_ASSIGNMENTS = [
    (["env"], "expected KEY=VALUE or KEY-"),
    (["env=prod", "role"], "expected KEY=VALUE or KEY-"),
    (["env="], "tag value is empty"),
    (["=prod"], "tag key is empty"),
    (["-"], "tag key is empty"),
    (["env=pr@d"], "tag value may not contain '@'"),
    (["env=a=b"], "tag value may not contain '='"),
    (["env=prod-"], "tag value must end with a letter or digit"),
    (["-env=prod"], "tag key must start with a letter or digit"),
    (["env--"], "tag key must end with a letter or digit"),
    (["env=a", "env=b"], "given twice"),
    (["env=a", "env=a"], "given twice"),
    (["env=a", "env-"], "given twice"),
    (["env-", "env=a"], "given twice"),
]


@pytest.mark.parametrize(("items", "expected"), BAD_ASSIGNMENTS)
def test_bad_tag_assignments(items: list[str], expected: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_tag_assignments(items)
    assert not isinstance(caught.value, SelectorError)
    assert expected in caught.value.message
    assert repr(items[-1]) in caught.value.message  # names the offending item
    assert caught.value.hint
