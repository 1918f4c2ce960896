"""Key rules shared by every backend."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.objects.keys import MAX_KEY_BYTES, validate_key, validate_prefix

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "a/../b",
    "..",
    ".",
    "a/./b",
    "a//b",
    "a/",
    "a\\b",
    "..\\windows",
    "a/\x00b",
    "a/b\n",
    "a/.fleetops-tmp-123",
    "x" * (MAX_KEY_BYTES + 1),
    "a/" + "y" * 256,
    "a/\udc80",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_invalid_input_with_a_hint(key: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_key(key)
    assert "invalid object key" in info.value.message
    assert "commands/" in info.value.hint


@pytest.mark.parametrize(
    "key", ["stdout", "commands/c-1/host.example.com/stdout", "a b/ü/%41+x=y", ".hidden/x", "a/..b/c.."]
)
def test_good_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


def test_prefix_may_be_empty_or_end_in_a_slash() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("commands/") == "commands"
    assert validate_prefix("commands/c1") == "commands/c1"


@pytest.mark.parametrize("prefix", ["/", "/abs", "a//", "a/../b", "a\\b"])
def test_bad_prefixes_are_invalid_input(prefix: str) -> None:
    with pytest.raises(InvalidInput):
        validate_prefix(prefix)
