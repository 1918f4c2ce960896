"""The one rate-limit parser: what max-concurrency and max-errors accept, refuse and resolve to."""

from __future__ import annotations

import pytest

from fleetops.common import rates
from fleetops.common.errors import InvalidInput
from fleetops.common.rates import Rate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50", Rate(50, False)),
        ("10%", Rate(10, True)),
        (" 100% ", Rate(100, True)),
        ("1", Rate(1, False)),
        ("1000000", Rate(1_000_000, False)),
        ("", Rate(50, False)),  # the default
        ("   ", Rate(50, False)),
    ],
)
def test_max_concurrency_accepts(text: str, expected: Rate) -> None:
    assert rates.max_concurrency(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Rate(0, False)),
        ("0%", Rate(0, True)),
        ("", Rate(0, False)),
        ("5%", Rate(5, True)),
        (" 3 ", Rate(3, False)),
    ],
)
def test_max_errors_accepts(text: str, expected: Rate) -> None:
    assert rates.max_errors(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "max-concurrency 0 would never run anything"),
        ("0%", "max-concurrency 0% would never run anything"),
        ("101%", "max-concurrency 101% is out of range: it must be from 1% to 100%"),
        ("1000001", "max-concurrency 1000001 is out of range: it must be from 1 to 1000000"),
        ("1e11", "bad max-concurrency '1e11': not a whole number or a percentage"),
        ("2^63", "not a whole number"),
        ("-5", "not a whole number"),
        ("5.5", "not a whole number"),
        ("%", "not a whole number"),
        ("ten", "not a whole number"),
        ("²", "not a whole number"),  # str.isdigit() says yes; int() would take it
        ("١٠", "not a whole number"),  # Arabic-Indic digits: int() would take them too
        ("9" * 40, "bad max-concurrency of 40 characters"),
    ],
)
def test_max_concurrency_refuses_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        rates.max_concurrency(text)
    assert message in info.value.message
    assert "max-concurrency" in info.value.message
    assert "from 1 to 1000000" in info.value.hint and "10%" in info.value.hint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("101%", "max-errors 101% is out of range: it must be from 0% to 100%"),
        ("-1", "bad max-errors '-1': not a whole number or a percentage"),
        ("1000001", "it must be from 0 to 1000000"),
    ],
)
def test_max_errors_refuses_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        rates.max_errors(text)
    assert message in info.value.message
    assert "from 0 to 1000000" in info.value.hint


def test_the_defaults_parse_and_are_what_empty_means() -> None:
    assert rates.max_concurrency(rates.DEFAULT_MAX_CONCURRENCY) == rates.max_concurrency("") == Rate(50, False)
    assert rates.max_errors(rates.DEFAULT_MAX_ERRORS) == rates.max_errors("") == Rate(0, False)


@pytest.mark.parametrize(
    ("rate", "total", "expected"),
    [
        (Rate(50, False), 1000, 50),
        (Rate(50, False), 3, 50),  # a count is a count, whatever the targets
        (Rate(10, True), 1000, 100),
        (Rate(10, True), 5, 1),  # rounded up: 0.5 -> 1
        (Rate(1, True), 3, 1),
        (Rate(34, True), 3, 2),  # 1.02 -> 2
        (Rate(100, True), 7, 7),
        (Rate(5, True), 10, 1),
        (Rate(10, True), 0, 1),  # above zero never resolves to 0
        (Rate(0, False), 10, 0),  # max-errors 0: stop at the first error
        (Rate(0, True), 10, 0),
    ],
)
def test_resolve(rate: Rate, total: int, expected: int) -> None:
    assert rate.resolve(total) == expected


@pytest.mark.parametrize("text", ["50", "10%", "0", "100%"])
def test_text_form_parses_back_to_the_same_rate(text: str) -> None:
    rate = rates.max_errors(text)
    assert str(rate) == text and rates.max_errors(str(rate)) == rate


def test_text_form_is_canonical() -> None:
    assert str(rates.max_concurrency(" 007 ")) == "7"
