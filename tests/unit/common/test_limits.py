"""The one table of wire limits: checks name the limit and the size; channel limits cover their peers."""

from __future__ import annotations

import pytest

from fleetops.common import limits
from fleetops.common.durations import format_seconds, parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.common.selectors import Selector


def test_a_check_names_the_limit_and_the_size_without_echoing_the_input() -> None:
    with pytest.raises(InvalidInput) as info:
        limits.check_argv(["echo", "x" * 200_000])
    assert info.value.message == f"argv is 200006 bytes, the limit is {limits.ARGV_BYTES.maximum} bytes"
    assert info.value.hint and "xxxx" not in info.value.message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"A": "x" * 70_000}, "the environment (--env) is 70003 bytes"),
        ({f"V{i}": "" for i in range(300)}, "the environment (--env) is 300 items"),
        ({"": "x"}, "bad environment variable name"),
        ({"A=B": "x"}, "bad environment variable name"),
        ({"A": "a\0b"}, "contains a NUL byte"),
    ],
)
def test_environment_limits(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        limits.check_env(env)


def test_nul_in_an_argument_is_refused() -> None:
    with pytest.raises(InvalidInput, match="argument 1 of the command contains a NUL byte"):
        limits.check_argv(["echo", "a\0b"])


def test_truncation_keeps_whole_characters_and_the_marker() -> None:
    text = "é" * 5000
    cut = limits.truncate_utf8(text, 2048)
    assert len(cut.encode()) <= 2048 and cut.endswith("…(truncated)") and cut.startswith("éé")
    assert limits.truncate_utf8("short", 2048) == "short"


def test_every_channel_receives_at_least_what_its_peer_may_send() -> None:
    # controller -> agent: the largest RunInvocation fits what an agent receives (and old agents' 4 MiB).
    assert limits.RUN_INVOCATION_BYTES <= limits.AGENT_RECEIVE_BYTES
    assert limits.RUN_INVOCATION_BYTES <= 4 * limits.MIB
    # agent -> controller and opsctl -> controller.
    assert limits.CONTROLLER_RECEIVE_BYTES >= limits.AGENT_SEND_BYTES
    assert limits.CONTROLLER_RECEIVE_BYTES >= limits.OPERATOR_REQUEST_BYTES
    # The unauthenticated enrollment listener takes a registration, never a patch report's worth.
    assert limits.ENROLL_RECEIVE_BYTES < limits.AGENT_SEND_BYTES
    assert limits.OPERATOR_REQUEST_BYTES >= limits.SCRIPT_BYTES.maximum + limits.ARGV_BYTES.maximum
    # controller -> opsctl: a whole command, every tail the detail carries, and 10,000 reasons.
    detail = limits.OPERATOR_REQUEST_BYTES + limits.DETAIL_OUTPUT_BYTES + 10_000 * (limits.REASON_BYTES.maximum + 512)
    assert detail <= limits.OPERATOR_RESPONSE_BYTES <= limits.CONTROLLER_SEND_BYTES
    # A listing of the most commands run list asks for stays far below it.
    assert 1000 * (3 * limits.LISTED_TEXT_BYTES + 1024) < limits.OPERATOR_RESPONSE_BYTES // 8
    # An error fits a peer's 8 KiB metadata even when every byte is percent-encoded.
    assert 3 * limits.ERROR_MESSAGE_BYTES + 2 * limits.ERROR_HINT_BYTES < 8 * 1024


def test_the_selector_limit_is_checked_before_parsing() -> None:
    with pytest.raises(InvalidInput) as info:
        Selector.parse("a" * 16384)
    assert info.value.message == f"the selector is 16384 bytes, the limit is {limits.SELECTOR_BYTES.maximum} bytes"


def test_durations_are_bounded() -> None:
    with pytest.raises(InvalidInput, match="longer than 3650 days"):
        parse_duration("100000d")
    with pytest.raises(InvalidInput, match="too long"):
        parse_duration("1" * 100 + "s")
    assert format_seconds(limits.TIMEOUT_SECONDS_MAX) == "7d"
    assert format_seconds(limits.DELIVERY_TIMEOUT_SECONDS_MAX) == "30d"
    assert format_seconds(5400) == "1h30m"
