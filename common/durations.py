"""Human durations for the command lines: ``90s``, ``10m``, ``24h``, ``7d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fleetops.common.errors import InvalidInput

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any duration fleetops takes (each flag has its own, smaller, bound); past it a
# number would overflow timedelta or the wire's integers.
MAX_DURATION = timedelta(days=3650)
TIME_HINT = "give a duration back from now (90s, 2h, 7d) or an ISO 8601 time (2025-01-31T14:00:00Z; no zone means UTC)"


def parse_duration(text: str) -> timedelta:
    """Parse ``text`` such as ``24h`` or ``1h30m``.

    Raises:
        InvalidInput: empty, unknown unit, trailing garbage, or longer than MAX_DURATION (ten years).
    """
    s = text.strip().lower()
    if len(s) > 64:
        raise InvalidInput(f"bad duration: {len(s)} characters is too long for one", "e.g. 90s, 10m, 24h, 1h30m")
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
    if total > MAX_DURATION.total_seconds():
        raise InvalidInput(
            f"duration {text.strip()!r} is longer than {MAX_DURATION.days} days", "give a shorter duration"
        )
    return timedelta(seconds=total)


def format_seconds(seconds: int) -> str:
    """``604800`` -> ``7d``, ``5400`` -> ``1h30m``: the largest units that add up exactly."""
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(p for p in parts if not p.startswith("0") or len(parts) == 1)


def parse_time(text: str, flag: str, now: datetime | None = None) -> datetime:
    """``2h`` (that long before ``now``) or an ISO 8601 time (UTC unless it names a zone).

    Raises:
        InvalidInput: neither.
    """
    try:
        return (now or datetime.now(UTC)) - parse_duration(text)
    except InvalidInput:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"bad {flag} {text!r}", TIME_HINT) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
