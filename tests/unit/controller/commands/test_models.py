"""Rate limits as SSM resolves them, and which states count as errors."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.commands.models import CommandSpec, InvocationState, resolve_limit


@pytest.mark.parametrize(
    ("text", "total", "minimum", "expected"),
    [
        ("50", 1000, 1, 50),
        ("10%", 1000, 1, 100),
        ("10%", 5, 1, 1),  # rounded up: 0.5 -> 1
        ("1%", 3, 1, 1),
        ("0", 10, 0, 0),
        ("0%", 10, 0, 0),
        ("5%", 10, 0, 1),
        ("100%", 7, 1, 7),
        (" 3 ", 10, 0, 3),
    ],
)
def test_resolve_limit(text: str, total: int, minimum: int, expected: int) -> None:
    assert resolve_limit(text, total, what="max-errors", minimum=minimum) == expected


@pytest.mark.parametrize("text", ["", "-1", "ten", "101%", "5.5", "%"])
def test_bad_limits_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        resolve_limit(text, 10, what="max-concurrency", minimum=1)
    assert "max-concurrency" in info.value.message and "10%" in info.value.hint


def test_failed_and_timed_out_count_as_errors_undeliverable_does_not() -> None:
    assert InvocationState.FAILED.counts_as_error and InvocationState.TIMED_OUT.counts_as_error
    assert not InvocationState.UNDELIVERABLE.counts_as_error and not InvocationState.CANCELLED.counts_as_error
    assert {s for s in InvocationState if s.final} == {
        InvocationState.SUCCESS,
        InvocationState.FAILED,
        InvocationState.TIMED_OUT,
        InvocationState.CANCELLED,
        InvocationState.UNDELIVERABLE,
        InvocationState.NOT_STARTED,
    }


def test_spec_needs_exactly_one_of_command_and_script() -> None:
    with pytest.raises(InvalidInput):
        CommandSpec().validate()
    with pytest.raises(InvalidInput):
        CommandSpec(argv=("true",), script=b"true").validate()
    CommandSpec(argv=("true",)).validate()
    with pytest.raises(InvalidInput, match="environment"):
        CommandSpec(argv=("true",), env={"A=B": "x"}).validate()
