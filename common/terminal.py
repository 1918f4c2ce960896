"""The one bound on a terminal's size, for sessions.

The same check runs wherever a size enters: ``opsctl session`` before it opens or resizes, the
controller when a session opens and on every resize frame, the asciicast writer, and the agent before
it sizes the pseudo-terminal. So a size is refused (or accepted) alike everywhere, with the same words:
a 2000-column resize is refused exactly like a 2000-column open.

1000 columns and rows are more than any real screen shows, and well inside ConPTY's signed 16-bit
sizes and POSIX's 65535.
"""

from __future__ import annotations

from fleetops.common.errors import InvalidInput

__all__ = ["MAX_COLUMNS", "MAX_ROWS", "check_size"]

#: Widest terminal accepted.
MAX_COLUMNS = 1000
#: Tallest terminal accepted.
MAX_ROWS = 1000


def check_size(cols: int, rows: int) -> None:
    """Refuse a window size outside 1..MAX_COLUMNS by 1..MAX_ROWS.

    Raises:
        InvalidInput: ``cols`` or ``rows`` is not a whole number in range.
    """
    for value, top in ((cols, MAX_COLUMNS), (rows, MAX_ROWS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidInput(
                f"window size {cols!r}x{rows!r} is out of range",
                f"columns must be 1..{MAX_COLUMNS} and rows 1..{MAX_ROWS}",
            )
