"""Human durations for the command lines: ``90s``, ``10m``, ``24h``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

from fleetops.common.errors import InvalidInput

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse ``text`` such as ``24h`` or ``1h30m``.

    Raises:
        InvalidInput: empty, unknown unit, or trailing garbage.
    """
    s = text.strip().lower()
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise InvalidInput(
                f"bad duration {text!r} at {s[pos:]!r}",
                "use a number with a unit: ms, s, m, h, d or w (e.g. 90s, 10m, 24h, 1h30m)",
            )
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not s:
        raise InvalidInput("empty duration", "use a number with a unit, e.g. 24h")
    return timedelta(seconds=total)
