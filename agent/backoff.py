"""Reconnect delays: exponential backoff with full jitter.

After the ``n``-th consecutive failure (counting from 0) the agent waits a delay drawn uniformly from
``[0, min(cap, base * 2**n)]`` ("full jitter" in the AWS Architecture Blog post *Exponential Backoff
And Jitter*). The randomness spreads a fleet that lost its controller at the same moment over the whole
window instead of having every host redial in lockstep.
"""

from __future__ import annotations

import math
import random

from fleetops.common.errors import InvalidInput


class Backoff:
    """Exponential backoff with full jitter (AWS Architecture Blog, 'Exponential Backoff And Jitter').

    Args:
        base: the window after the first failure, in seconds (> 0).
        cap: the largest window, in seconds (> 0); reached after about ``log2(cap / base)`` failures.
        rng: the random source; pass a seeded :class:`random.Random` for reproducible delays.

    ``attempt`` counts the delays handed out since the last :meth:`reset` (the consecutive failures).
    """

    def __init__(self, base: float = 0.5, cap: float = 60.0, rng: random.Random | None = None) -> None:
        for name, value in (("base", base), ("cap", cap)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise InvalidInput(
                    f"backoff {name} must be a positive number of seconds, got {value!r}",
                    "for example Backoff(base=0.5, cap=60.0)",
                )
        self.base = float(base)
        self.cap = float(cap)
        self._rng = rng if rng is not None else random.Random()
        self.attempt = 0

    def window(self, attempt: int | None = None) -> float:
        """The upper bound ``min(cap, base * 2**attempt)`` of the delay for ``attempt`` (default: the next one)."""
        n = self.attempt if attempt is None else attempt
        try:
            # ldexp scales by an exact power of two and raises (rather than returning inf or looping)
            # when the result does not fit a float, so attempt counts in the thousands are fine.
            grown = math.ldexp(self.base, n)
        except OverflowError:
            return self.cap
        return min(self.cap, grown)

    def next_delay(self) -> float:
        """A delay in seconds, uniform in ``[0, window]``; counts one more failed attempt."""
        delay = self._rng.uniform(0.0, self.window())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over from ``base`` (call after a connection succeeded)."""
        self.attempt = 0

    def __repr__(self) -> str:
        return f"Backoff(base={self.base!r}, cap={self.cap!r}, attempt={self.attempt})"
