"""Token buckets, one per key (a source address, an activation id, a login token id).

A bucket holds at most ``burst`` tokens and gains ``per_second`` tokens a second; an attempt takes
one. A key never seen starts full, so a full bucket and a missing one are the same thing: full
buckets are what the table drops first when it reaches ``max_keys`` (memory stays bounded however
many addresses a flood comes from), and only then the least recently used one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """``burst`` attempts at once, then ``per_second`` a second.

    Raises:
        ValueError: ``burst`` below 1 or ``per_second`` not above 0.
    """

    burst: int
    per_second: float

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError(f"a rate's burst must be at least 1, not {self.burst}")
        if not self.per_second > 0:
            raise ValueError(f"a rate must refill faster than 0 per second, not {self.per_second}")

    def describe(self) -> str:
        every = 1 / self.per_second
        pace = f"{self.per_second:g}/s" if self.per_second >= 1 else f"1 per {every:g}s"
        return f"a burst of {self.burst}, then {pace}"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class BucketTable:
    """Token buckets by key, at most ``max_keys`` of them.

    Args:
        rate: the burst and refill of every bucket.
        max_keys: buckets kept at once (full ones are dropped first, then the least recently used).
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(self, rate: Rate, *, max_keys: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._max_keys = max(1, max_keys)
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._inserts_since_prune = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may make an attempt (0.0: now). Takes nothing."""
        bucket = self._refilled(key, create=False)
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self.rate.per_second

    def take(self, key: str) -> float:
        """Take a token for an attempt by ``key``.

        Returns:
            0.0 when the attempt may go ahead (a token was taken), else the seconds until it may
            (nothing was taken).
        """
        bucket = self._refilled(key, create=True)
        assert bucket is not None
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate.per_second

    def _refilled(self, key: str, *, create: bool) -> _Bucket | None:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if not create:
                return None
            self._make_room()
            bucket = self._buckets[key] = _Bucket(float(self.rate.burst), now)
            return bucket
        self._buckets.move_to_end(key)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.rate.burst), bucket.tokens + elapsed * self.rate.per_second)
        bucket.updated = now
        return bucket

    def _make_room(self) -> None:
        if len(self._buckets) < self._max_keys:
            return
        # Dropping full buckets changes nothing (a new key starts full). Scanning is O(n), so it is
        # done at most once per max_keys/2 inserts; in between the least recently used key goes.
        self._inserts_since_prune += 1
        if self._inserts_since_prune >= self._max_keys // 2:
            self._inserts_since_prune = 0
            now = self._clock()
            rate = self.rate
            full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * rate.per_second >= rate.burst]
            for key in full:
                del self._buckets[key]
        while len(self._buckets) >= self._max_keys:
            self._buckets.popitem(last=False)
