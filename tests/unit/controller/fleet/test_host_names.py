"""The one rule for host names, wherever the name comes from."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.fleet.service import host_name_problem, validate_host_name


@pytest.mark.parametrize("name", ["web-1", "db01.example.com", "A_b", "x", "a" * 255])
def test_good_names(name: str) -> None:
    assert host_name_problem(name) == ""
    validate_host_name(name)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("a" * 256, "256 characters"),
        ("a" * 10_000, "10000 characters"),
        ("web-9\n\x1b[32mdb-1 online\x1b[0m", "characters other than"),
        ("-web", "starts or ends"),
        ("web ", "characters other than"),
        ("h-0123456789abcdef0123", "looks like a host id"),
    ],
)
def test_bad_names(name: str, problem: str) -> None:
    assert problem in host_name_problem(name)
    with pytest.raises(InvalidInput) as info:
        validate_host_name(name)
    # The message names the problem without echoing a long or unprintable name raw.
    assert problem in info.value.message and "\x1b" not in info.value.message and len(info.value.message) < 300
