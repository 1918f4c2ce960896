"""The one parser of rate limits: SSM's max-concurrency and max-errors.

A rate is a count (``"50"``) or a percentage of the targets (``"10%"``). Every path that takes one
uses this module, so they accept and refuse the same texts with the same words: ``opsctl run``,
``opsctl patch scan|install`` and ``opsctl window task add`` before they send, and the controller
when a command, a patch operation or a window task is created, saved or started.

What the edge values mean:

- ``""`` is the default: :data:`DEFAULT_MAX_CONCURRENCY` (``"50"``) or :data:`DEFAULT_MAX_ERRORS`
  (``"0"``).
- max-concurrency ``0`` (or ``0%``) is refused: it would never run anything.
- max-errors ``0`` (or ``0%``) stops sending at the first error.
- A count runs from its minimum to :data:`~fleetops.common.limits.RATE_COUNT_MAX`, a percentage to
  100%; anything else (``101%``, ``-1``, ``5.5``, ``1e3``) is refused.

A percentage resolves against the number of targets, rounded up (SSM): 10% of 5 hosts is 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fleetops.common.errors import InvalidInput
from fleetops.common.limits import RATE_COUNT_MAX

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_ERRORS",
    "Rate",
    "max_concurrency",
    "max_errors",
]

#: Hosts at a time when none is given.
DEFAULT_MAX_CONCURRENCY = "50"
#: Errors tolerated when none is given: stop at the first one.
DEFAULT_MAX_ERRORS = "0"

_RATE = re.compile(r"([0-9]+)(%?)", re.ASCII)
_SHOWN_CHARACTERS = 32


@dataclass(frozen=True)
class Rate:
    """A parsed rate: ``number`` hosts, or ``number`` percent of the targets when ``percent``."""

    number: int
    percent: bool

    def resolve(self, total: int) -> int:
        """The count this rate allows out of ``total`` targets.

        A percentage is rounded up, and a rate above zero never resolves to less than 1
        (1% of 3 hosts is 1, so is 10% of none).
        """
        if not self.percent:
            return self.number
        count = math.ceil(max(total, 0) * self.number / 100)
        return max(count, 1) if self.number else 0

    def __str__(self) -> str:
        return f"{self.number}%" if self.percent else str(self.number)


def max_concurrency(text: str) -> Rate:
    """Parse ``--max-concurrency``: hosts at a time, 1..RATE_COUNT_MAX or 1%..100% (``""``: 50).

    Raises:
        InvalidInput: not a count or a percentage, 0 (nothing would run), or out of range.
    """
    return _parse(text, "max-concurrency", DEFAULT_MAX_CONCURRENCY, minimum=1)


def max_errors(text: str) -> Rate:
    """Parse ``--max-errors``: errors before sending stops, 0..RATE_COUNT_MAX or 0%..100% (``""``: 0).

    0 stops at the first error.

    Raises:
        InvalidInput: not a count or a percentage, or out of range.
    """
    return _parse(text, "max-errors", DEFAULT_MAX_ERRORS, minimum=0)


def _parse(text: str, what: str, default: str, *, minimum: int) -> Rate:
    t = text.strip() or default
    hint = (
        f"give {what} as a count from {minimum} to {RATE_COUNT_MAX} (e.g. 50) "
        f"or a percentage of the targets from {minimum}% to 100% (e.g. 10%)"
    )
    match = _RATE.fullmatch(t) if len(t) <= _SHOWN_CHARACTERS else None
    if match is None:
        shown = repr(t) if len(t) <= _SHOWN_CHARACTERS else f"of {len(t)} characters"
        raise InvalidInput(f"bad {what} {shown}: not a whole number or a percentage", hint)
    rate = Rate(int(match.group(1)), bool(match.group(2)))
    if rate.number == 0 and minimum > 0:
        raise InvalidInput(f"{what} {t} would never run anything", hint)
    top = 100 if rate.percent else RATE_COUNT_MAX
    if not minimum <= rate.number <= top:
        unit = "%" if rate.percent else ""
        raise InvalidInput(f"{what} {t} is out of range: it must be from {minimum}{unit} to {top}{unit}", hint)
    return rate
