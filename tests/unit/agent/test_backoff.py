"""Unit tests of fleetops.agent.backoff: full-jitter exponential backoff."""

from __future__ import annotations

import random

import pytest

from fleetops.agent.backoff import Backoff
from fleetops.common.errors import InvalidInput


def test_delays_stay_within_the_growing_window() -> None:
    base, cap = 0.5, 60.0
    b = Backoff(base=base, cap=cap, rng=random.Random(1234))
    for n in range(40):
        assert b.attempt == n
        delay = b.next_delay()
        assert 0.0 <= delay <= min(cap, base * 2**n), n
    assert b.attempt == 40


def test_window_doubles_then_caps() -> None:
    b = Backoff(base=0.5, cap=60.0, rng=random.Random(0))
    assert [b.window(n) for n in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_seeded_rng_gives_reproducible_full_jitter() -> None:
    first = Backoff(base=1.0, cap=30.0, rng=random.Random(42))
    second = Backoff(base=1.0, cap=30.0, rng=random.Random(42))
    a = [first.next_delay() for _ in range(20)]
    assert a == [second.next_delay() for _ in range(20)]
    # the same draws as uniform(0, window) on an identically seeded source
    ref = random.Random(42)
    assert a == [ref.uniform(0.0, min(30.0, 1.0 * 2**n)) for n in range(20)]
    # full jitter: once capped, the delays spread over the whole window, not just its top
    capped = Backoff(base=1.0, cap=30.0, rng=random.Random(7))
    capped.attempt = 10
    spread = [capped.next_delay() for _ in range(500)]
    assert min(spread) < 3.0 and max(spread) > 27.0


@pytest.mark.parametrize("attempt", [64, 1023, 1024, 1075, 5000, 10**6, 10**30])
def test_cap_respected_at_large_attempts_without_overflow(attempt: int) -> None:
    b = Backoff(base=0.5, cap=60.0, rng=random.Random(attempt % 1000))
    b.attempt = attempt
    assert b.window() == 60.0
    for _ in range(50):
        assert 0.0 <= b.next_delay() <= 60.0
    assert b.attempt == attempt + 50


def test_long_outage_never_overflows() -> None:
    b = Backoff(base=0.001, cap=5.0, rng=random.Random(3))
    for _ in range(3000):
        assert 0.0 <= b.next_delay() <= 5.0


def test_reset_restarts_from_base() -> None:
    b = Backoff(base=2.0, cap=100.0, rng=random.Random(9))
    for _ in range(10):
        b.next_delay()
    assert b.attempt == 10 and b.window() == 100.0
    b.reset()
    assert b.attempt == 0
    assert b.window() == 2.0
    assert 0.0 <= b.next_delay() <= 2.0
    assert b.attempt == 1
    assert 0.0 <= b.next_delay() <= 4.0


def test_cap_below_base_caps_everything() -> None:
    b = Backoff(base=10.0, cap=3.0, rng=random.Random(5))
    assert all(0.0 <= b.next_delay() <= 3.0 for _ in range(20))


def test_defaults() -> None:
    b = Backoff()
    assert (b.base, b.cap, b.attempt) == (0.5, 60.0, 0)
    assert 0.0 <= b.next_delay() <= 0.5


@pytest.mark.parametrize(
    "kwargs",
    [{"base": 0}, {"base": -1.0}, {"cap": 0}, {"cap": float("inf")}, {"base": float("nan")}, {"base": "1"}],
)
def test_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        Backoff(**kwargs)  # type: ignore[arg-type]
