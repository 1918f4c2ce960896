"""A window outside the duration limits is refused naming the controller setting that sets the minimum."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.windows.models import Window


def window(duration: int, cutoff: int = 0) -> Window:
    return Window(name="w", schedule="rate(1 day)", duration_seconds=duration, cutoff_seconds=cutoff)


def test_shorter_than_the_minimum_names_window_min_duration() -> None:
    with pytest.raises(InvalidInput) as exc:
        window(1800).check(min_duration=3600)
    assert exc.value.message == (
        "window duration 30m is shorter than this controller's minimum of 1h (its --window-min-duration setting)"
    )
    assert exc.value.hint is not None and "--duration 1h or more" in exc.value.hint
    assert "--window-min-duration" in exc.value.hint


def test_a_lowered_minimum_lets_a_short_window_through() -> None:
    short = window(120, cutoff=60)
    with pytest.raises(InvalidInput, match="shorter than this controller's minimum"):
        short.check()  # the default minimum refuses it...
    short.check(min_duration=60)  # ...and the lowered one does not


def test_longer_than_a_day_is_refused() -> None:
    with pytest.raises(InvalidInput, match="window duration 1d1h is longer than 24h"):
        window(25 * 3600).check(min_duration=60)
