"""Audit of refusals on the unauthenticated enrollment port, bounded per source address.

Every refusal is audited, but an anonymous peer must not be able to grow the log without bound.
Per source key and interval (default 60 s) the first ``in_full`` refusals are written as their own
events (what was asked, why it was refused); further ones are only counted, and when the interval
ends they become **one** ``enrollment.refusals`` event with the count, by action and by error. A
flood that goes on keeps being counted in the next interval without new individual events, so a
steady flood costs one event per source per interval. At most ``max_sources`` sources are tracked
at once; refusals of further sources are counted under the source ``*``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleetops.common.errors import AuthError, FleetopsError, RateLimited
from fleetops.controller.audit.models import Outcome
from fleetops.controller.audit.service import AuditLog

log = logging.getLogger(__name__)

AGGREGATE_ACTION = "enrollment.refusals"
OVERFLOW_SOURCE = "*"
MAX_TARGETS_KEPT = 10
MAX_TARGET_CHARS = 64


@dataclass
class _Window:
    ends: float
    started_at: datetime
    written: int = 0
    counted: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    targets: list[str] = field(default_factory=list)


def outcome_of(error: FleetopsError) -> Outcome:
    return "refused" if isinstance(error, AuthError | RateLimited) else "error"


class RefusalLog:
    """See the module docstring.

    Args:
        audit: where events go.
        interval: seconds per source over which refusals beyond ``in_full`` are counted into one event.
        in_full: refusals per source and interval written as their own events (at least 1).
        max_sources: sources tracked at once.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        audit: AuditLog,
        *,
        interval: float = 60.0,
        in_full: int = 5,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        aggregate_action: str = AGGREGATE_ACTION,
    ) -> None:
        self._audit = audit
        self._aggregate_action = aggregate_action
        self._interval = max(0.01, interval)
        self._in_full = max(1, in_full)
        self._max_sources = max(1, max_sources)
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._task: asyncio.Task[None] | None = None

    async def refused(
        self,
        *,
        source: str,
        actor: str,
        action: str,
        target: str,
        error: FleetopsError,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Audit (or count) one refusal of ``source``."""
        now = self._clock()
        window = self._windows.get(source)
        if window is not None and now >= window.ends:
            await self._close(source, window, now)
            window = self._windows.get(source)
        if window is None:
            if len(self._windows) >= self._max_sources and source != OVERFLOW_SOURCE:
                # Too many sources at once: count this one with the rest, never write it alone.
                source = OVERFLOW_SOURCE
                window = self._windows.get(source)
            if window is None:
                window = self._windows[source] = _Window(ends=now + self._interval, started_at=datetime.now(UTC))
                if source == OVERFLOW_SOURCE:
                    window.written = self._in_full
        if window.written < self._in_full:
            window.written += 1
            await self._audit.record(
                actor=actor,
                action=action,
                target=target,
                outcome=outcome_of(error),
                details={**(details or {}), "source": source, "error": error.message},
            )
            return
        window.counted += 1
        window.actions[action] += 1
        window.errors[type(error).__name__] += 1
        short = target[:MAX_TARGET_CHARS]
        if short and short not in window.targets and len(window.targets) < MAX_TARGETS_KEPT:
            window.targets.append(short)

    async def _close(self, source: str, window: _Window, now: float) -> None:
        if self._windows.get(source) is window:
            if window.counted:
                # A flood that goes on is counted on: the next interval writes nothing one by one.
                self._windows[source] = _Window(
                    ends=now + self._interval, started_at=datetime.now(UTC), written=self._in_full
                )
            else:
                del self._windows[source]
        if not window.counted:
            return
        try:
            await self._audit.record(
                actor=f"peer:{source}",
                action=self._aggregate_action,
                target=source,
                outcome="refused",
                details={
                    "source": source,
                    "count": window.counted,
                    "since": window.started_at.isoformat(),
                    "until": datetime.now(UTC).isoformat(),
                    "actions": dict(window.actions),
                    "errors": dict(window.errors),
                    "targets": list(window.targets),
                    "targets_truncated": len(window.targets) >= MAX_TARGETS_KEPT,
                },
            )
        except BaseException:
            # Not written: carry the counts into the source's current window, written with the next one.
            current = self._windows.setdefault(
                source, _Window(ends=now + self._interval, started_at=window.started_at, written=self._in_full)
            )
            current.counted += window.counted
            current.actions.update(window.actions)
            current.errors.update(window.errors)
            raise

    async def flush(self, *, everything: bool = False) -> None:
        """Write the count of every interval that has ended (``everything``: of every interval)."""
        now = self._clock()
        for source, window in list(self._windows.items()):
            if everything or now >= window.ends:
                await self._close(source, window, now)
        if everything:
            self._windows.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="enrollment-refusal-audit")

    async def stop(self) -> None:
        """Stop the timer and write every count still open."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush(everything=True)

    async def _run(self) -> None:
        tick = min(5.0, max(0.05, self._interval / 4))
        while True:
            await asyncio.sleep(tick)
            try:
                await self.flush()
            except Exception:  # the database may be briefly away: the counts stay and are written later
                log.exception("writing counted enrollment refusals to the audit log failed; retrying")
