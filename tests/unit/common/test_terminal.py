"""The one terminal-size bound, and that every place a size enters uses it."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.terminal import MAX_COLUMNS, MAX_ROWS, check_size
from fleetops.controller.sessions.asciicast import AsciicastEncoder
from fleetops.controller.sessions.models import Resize, SessionRequest, check_request


@pytest.mark.parametrize("size", [(1, 1), (80, 24), (MAX_COLUMNS, MAX_ROWS)])
def test_sizes_in_range_pass(size: tuple[int, int]) -> None:
    check_size(*size)


@pytest.mark.parametrize("size", [(0, 24), (80, 0), (-1, 24), (MAX_COLUMNS + 1, 24), (80, MAX_ROWS + 1), (2000, 50)])
def test_sizes_out_of_range_are_refused_with_a_hint(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidInput, match=rf"window size {size[0]}x{size[1]} is out of range") as info:
        check_size(*size)
    assert f"1..{MAX_COLUMNS}" in info.value.hint


@pytest.mark.parametrize("size", [(True, 24), (80.0, 24), ("80", 24)])
def test_non_integers_are_refused(size: tuple[object, object]) -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        check_size(*size)  # type: ignore[arg-type]  # deliberately the wrong type


def _message(call: object) -> str:
    with pytest.raises(InvalidInput) as info:
        call()  # type: ignore[operator]  # a zero-argument callable
    return f"{info.value.message} / {info.value.hint}"


def test_open_resize_and_recording_refuse_2000_columns_alike() -> None:
    expected = _message(lambda: check_size(2000, 50))
    assert _message(lambda: check_request(SessionRequest(host="web-1", cols=2000, rows=50))) == expected
    assert _message(lambda: Resize(2000, 50)) == expected
    assert _message(lambda: AsciicastEncoder(2000, 50, timestamp=0)) == expected
    assert _message(lambda: AsciicastEncoder(80, 24, timestamp=0).resize(1.0, 2000, 50)) == expected
