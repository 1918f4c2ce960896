"""Token buckets: burst, refill, the wait they report, and bounded memory."""

from __future__ import annotations

import pytest

from fleetops.controller.throttle.buckets import BucketTable, Rate


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_refill_rate() -> None:
    clock = Clock()
    table = BucketTable(Rate(3, 0.5), clock=clock)
    assert [table.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert table.take("a") == pytest.approx(2.0)  # one token per 2 s
    assert table.wait("a") == pytest.approx(2.0)
    clock.now = 1.0
    assert table.take("a") == pytest.approx(1.0)  # refused attempts take nothing
    clock.now = 2.0
    assert table.take("a") == 0.0 and table.take("a") > 0
    # Keys are independent; a key never seen may go ahead.
    assert table.take("b") == 0.0 and table.wait("never") == 0.0


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    table = BucketTable(Rate(2, 1.0), clock=clock)
    table.take("a")
    clock.now = 1000.0
    assert [table.take("a") for _ in range(3)][2] > 0


def test_memory_is_bounded_and_full_buckets_go_first() -> None:
    clock = Clock()
    table = BucketTable(Rate(1, 0.001), max_keys=4, clock=clock)
    table.take("drained")  # empty for ~1000 s
    for i in range(20):
        table.take(f"k{i}")
    assert len(table) <= 4
    # The least recently used keys went; a drained key that stays in use keeps its state.
    table = BucketTable(Rate(1, 0.001), max_keys=4, clock=clock)
    for i in range(10):
        table.take("drained")
        table.take(f"k{i}")
    assert table.wait("drained") > 0


def test_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="burst"):
        Rate(0, 1.0)
    with pytest.raises(ValueError, match="refill"):
        Rate(1, 0.0)
    assert Rate(10, 1.0).describe() == "a burst of 10, then 1/s" and Rate(5, 0.1).describe().endswith("1 per 10s")
