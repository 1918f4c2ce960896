"""``opsctl window``'s flags as requests (opsctl/window_request.py): the checks made before sending."""

from __future__ import annotations

import argparse

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.opsctl import window_request
from fleetops.opsctl.cli import build_parser


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_next_runs_of_a_saved_window_or_of_an_unsaved_schedule() -> None:
    assert window_request.next_runs_query(parse("window", "next", "w1", "-n", "3")) == ("w1", None, 3)
    name, unsaved, count = window_request.next_runs_query(
        parse("window", "next", "--schedule", "rate(1 day)", "--timezone", "Europe/Paris")
    )
    assert (name, count) == ("", 5)
    assert unsaved is not None and (unsaved.schedule, unsaved.timezone) == ("rate(1 day)", "Europe/Paris")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("w1", "-n", "0"), "-n must be 1 or more"),
        (("w1", "-n", str(2**32)), "-n is too large"),
        ((), "give a window name or --schedule EXPR"),
        (("w1", "--offset", "2d"), "--offset go with --schedule"),
    ],
)
def test_next_runs_refuses(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        window_request.next_runs_query(parse("window", "next", *argv))
    assert caught.value.hint


def test_history_limit() -> None:
    assert window_request.history_limit(parse("window", "history", "w1")) == 20
    with pytest.raises(InvalidInput, match="--limit must be 1 or more"):
        window_request.history_limit(parse("window", "history", "w1", "--limit", "0"))


def test_rate_limits_are_sent_stripped_and_empty_means_the_default() -> None:
    base = ("window", "task", "add", "w1", "--priority", "1", "--type", "patch-scan", "--all")
    task = window_request.task_request(parse(*base, "--max-concurrency", " 10% ", "--max-errors", "0"))
    assert (task.max_concurrency, task.max_errors) == ("10%", "0")
    task = window_request.task_request(parse(*base))
    assert (task.max_concurrency, task.max_errors) == ("", "")
