"""When a maintenance window opens: ``cron()``, ``rate()`` and ``at()`` in an IANA time zone.

Pure and clock-free: every question takes the moment it is asked about (``next_after(moment)``),
and a ``rate()`` schedule takes its first occurrence from ``start_date`` or from ``anchor`` (the
window's creation time), so answers can be replayed. docs/maintenance-windows.md ("Schedules") is
the user's version of this text.

Expressions
    ``cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK)``: standard five-field cron. Numbers, ``*``,
    lists ``a,b``, ranges ``a-b``, steps ``*/n``, ``a-b/n`` and ``a/n`` (= ``a-max/n``), month
    names ``JAN``-``DEC``, day names ``SUN``-``SAT`` (``0`` and ``7`` are Sunday; ``FRI-SUN``
    wraps to Sunday). Extensions borrowed from AWS (Quartz) cron: ``?`` = ``*`` in the day fields,
    ``L`` in DAY-OF-MONTH (the last day of the month), ``TUE#2`` (the second Tuesday of the month,
    ``#1``-``#5``) and ``FRIL`` / ``5L`` (the last Friday of the month) in DAY-OF-WEEK.

    Day-of-month and day-of-week combine as in Vixie cron and cronie: when *both* fields are
    restricted (neither starts with ``*`` or ``?``) a day matches if EITHER matches; otherwise
    both must. So ``cron(0 2 8-14 * TUE)`` runs on the 8th-14th *and* on every Tuesday; the
    second Tuesday is ``cron(0 2 * * TUE#2)``. A field such as ``*/2`` starts with ``*`` and so
    counts as unrestricted (both must match), exactly as in Vixie cron.

    ``rate(N minute|minutes|hour|hours|day|days)``, N >= 1: every N units of *elapsed* time from
    the first occurrence (``start_date`` if given, else the window's creation time). A day is
    24 hours; rates ignore the time zone and daylight saving time (as AWS EventBridge Scheduler).

    ``at(YYYY-MM-DDTHH:MM[:SS])``: once, at that wall time in the window's time zone. A UTC offset
    or ``Z`` in the text is refused: the zone is the window's ``timezone``.

Daylight saving time
    cron and at() times are wall-clock times in the zone. Two cases have no single answer:

    * A wall time that does not exist (clocks go forward; 02:30 on the last Sunday of March in
      Europe/Paris) runs at the same offset past the gap, i.e. shifted forward by the gap's
      length: 02:30 -> 03:30 CEST. This is how RFC 5545 (iCalendar) and java.time resolve such
      times, and what Python's ``fold=0`` gives; it keeps "half past" and the window's position in
      the night. Cron implementations differ: Vixie cron/cronie run the job just after the change
      (~03:00), AWS EventBridge Scheduler skips the run. We do not skip: a skipped window is a
      missed week of patching. Several wall times that land on the same instant run once
      (``cron(*/15 * * * *)`` runs 03:00, 03:15, ... once each that morning).
    * A wall time that happens twice (clocks go back; 02:30 on the last Sunday of October in
      Europe/Paris happens in CEST, then in CET) runs ONCE, at the first occurrence (``fold=0``,
      02:30 CEST = 00:30 UTC) - as AWS EventBridge Scheduler, RFC 5545 and java.time. An hourly
      cron therefore has a two-hour gap that night; use ``rate(1 hour)`` for elapsed-time
      spacing.

Active period and offset (AWS Maintenance Windows semantics)
    ``start_date``/``end_date``: no occurrence before/after them (both inclusive). Aware datetimes
    are instants; naive ones are wall times in the window's zone. ``offset_days`` (1-6, AWS's
    "schedule offset", cron only): each run is that many calendar days after a cron match, at the
    same wall time. As in AWS, a match before the window's start (``start_date``, else ``anchor``)
    does not produce a run even when match + offset is still ahead; ``end_date`` limits the run.

Search
    ``cron`` schedules walk the calendar month by month, test each day, then expand the day's
    hours x minutes: a year of hourly runs is ~9,000 conversions, and the next Feb 29 is found in
    a handful of steps. ``Schedule.parse`` refuses day/month combinations that never occur
    (``cron(0 0 31 2 *)``); as a safety net the search gives up after ``SEARCH_YEARS`` years
    without a matching day and answers ``None``.
"""

from __future__ import annotations

import calendar
import heapq
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleetops.common.errors import InvalidInput

CRON_HINT = "cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK), e.g. cron(0 2 * * SUN)"
RATE_HINT = "rate(N minutes|hours|days) with a whole N >= 1, e.g. rate(30 minutes) or rate(1 day)"
AT_HINT = "at(YYYY-MM-DDTHH:MM[:SS]), a wall time in the window's time zone, e.g. at(2026-12-24T22:00)"
SCHEDULE_HINT = "use cron(0 2 * * SUN), rate(12 hours) or at(2026-12-24T22:00)"
TIMEZONE_HINT = "use an IANA name such as Europe/Paris"

#: AWS Maintenance Windows accept a schedule offset of 1 to 6 days.
MAX_OFFSET_DAYS = 6
#: ``next_after`` gives up after this many calendar years without a day the cron expression matches.
SEARCH_YEARS = 100

_MONTH_NAMES = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
#: Longest each month can be (February in a leap year).
_MONTH_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
#: No zone is further than a day from UTC: a safe floor for the instants of one wall-clock date.
_MAX_ZONE_OFFSET = timedelta(days=1)
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}

_EXPRESSION = re.compile(r"\s*([A-Za-z]+)\s*\((.*)\)\s*", re.DOTALL)
_RATE = re.compile(r"\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*", re.IGNORECASE)
_AT = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?\s*")
_AT_WITH_ZONE = re.compile(
    r"\s*\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)\s*", re.IGNORECASE
)


class ScheduleKind(StrEnum):
    CRON = "cron"
    RATE = "rate"
    AT = "at"


# --------------------------------------------------------------------------------------------- cron


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    #: what ``*`` covers (day-of-week accepts 7 for Sunday but ``*`` means 0-6)
    star_high: int


_FIELDS = (
    _FieldSpec("minute", 0, 59, {}, 59),
    _FieldSpec("hour", 0, 23, {}, 23),
    _FieldSpec("day-of-month", 1, 31, {}, 31),
    _FieldSpec("month", 1, 12, _MONTH_NAMES, 12),
    _FieldSpec("day-of-week", 0, 7, _DAY_NAMES, 6),
)
_NAME_KINDS = {"month": "a month name (JAN-DEC)", "day-of-week": "a day name (SUN-SAT)"}


def _cron_error(message: str, inner: str, span: tuple[int, int], hint: str = CRON_HINT) -> InvalidInput:
    """An InvalidInput whose message shows the expression with carets under ``span`` (indices in ``inner``)."""
    start, end = span
    pointer = " " * (len("cron(") + start) + "^" * max(1, end - start)
    return InvalidInput(f"{message}\n  cron({inner})\n  {pointer}", hint)


@dataclass(frozen=True)
class CronSpec:
    """A parsed five-field cron expression (no time zone: it names wall-clock times).

    ``weekdays`` count 0 = Sunday .. 6 = Saturday. ``dom_restricted``/``dow_restricted`` say
    whether the field text starts with something other than ``*``/``?`` (Vixie cron's rule for
    OR-ing the two day fields). ``CronSpec.parse`` does not check that the expression can ever
    match; ``Schedule.parse`` does.
    """

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    last_day: bool
    months: frozenset[int]
    weekdays: frozenset[int]
    nth_weekdays: frozenset[tuple[int, int]]
    last_weekdays: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool
    times: tuple[tuple[int, int], ...] = field(repr=False, compare=False, default=())

    @classmethod
    def parse(cls, inner: str) -> CronSpec:
        """Parse the text between ``cron(`` and ``)``.

        Raises:
            InvalidInput: naming the bad field, with carets under it.
        """
        tokens = [(m.group(), m.span()) for m in re.finditer(r"\S+", inner)]
        if len(tokens) != 5:
            hint = CRON_HINT
            if len(tokens) == 6:
                hint = (
                    "fleetops uses standard 5-field cron; drop the 6th (YEAR) field of AWS's form, "
                    "e.g. cron(0 2 ? * SUN *) -> cron(0 2 * * SUN)"
                )
            raise _cron_error(
                f"cron() needs 5 fields (MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK), got {len(tokens)}",
                inner,
                (0, len(inner)),
                hint,
            )
        parsed = [_parse_field(text, span, spec, inner) for (text, span), spec in zip(tokens, _FIELDS, strict=True)]
        minutes, hours, dom, months, dow = parsed
        canonical = " ".join("*" if text == "?" else text.upper() for text, _ in tokens)
        return cls(
            text=canonical,
            minutes=tuple(sorted(minutes.values)),
            hours=tuple(sorted(hours.values)),
            days=frozenset(dom.values),
            last_day=dom.last,
            months=frozenset(months.values),
            weekdays=frozenset(0 if v == 7 else v for v in dow.values),
            nth_weekdays=frozenset(dow.nth),
            last_weekdays=frozenset(dow.last_weekdays),
            dom_restricted=not tokens[2][0].startswith(("*", "?")),
            dow_restricted=not tokens[4][0].startswith(("*", "?")),
            times=tuple((h, m) for h in sorted(hours.values) for m in sorted(minutes.values)),
        )

    def matches(self, day: date) -> bool:
        """Whether the day fields and the month field select ``day``."""
        if day.month not in self.months:
            return False
        ndays = calendar.monthrange(day.year, day.month)[1]
        return self._day_matches(day.day, ndays, (day.weekday() + 1) % 7)

    def _day_matches(self, day: int, ndays: int, weekday: int) -> bool:
        dom = day in self.days or (self.last_day and day == ndays)
        dow = (
            weekday in self.weekdays
            or (weekday, (day - 1) // 7 + 1) in self.nth_weekdays
            or (weekday in self.last_weekdays and day + 7 > ndays)
        )
        if self.dom_restricted and self.dow_restricted:
            return dom or dow  # Vixie cron: either restricted day field may match
        return dom and dow  # an unrestricted field selects every day it lists (all, for "*")

    def matching_days(self, first: date) -> Iterator[date]:
        """Every matching day from ``first`` on, in order; stops after ``SEARCH_YEARS`` years without one."""
        year, month, start_day = first.year, first.month, first.day
        last_found = year
        while year <= 9998 and year - last_found <= SEARCH_YEARS:
            if month in self.months:
                weekday_of_first, ndays = calendar.monthrange(year, month)
                weekday_of_first = (weekday_of_first + 1) % 7  # Python counts from Monday, cron from Sunday
                for day in range(start_day, ndays + 1):
                    if self._day_matches(day, ndays, (weekday_of_first + day - 1) % 7):
                        last_found = year
                        yield date(year, month, day)
            start_day = 1
            month += 1
            if month == 13:
                year, month = year + 1, 1

    def impossible(self) -> str | None:
        """Why the expression can never match, or None. Only day-of-month/month clashes are provable."""
        if not self.dom_restricted or self.dow_restricted or self.last_day:
            return None  # some weekday of some month always qualifies
        if any(d <= _MONTH_MAX_DAYS[m] for m in self.months for d in self.days):
            return None
        return "day-of-month"


@dataclass(frozen=True)
class _Field:
    values: set[int]
    last: bool = False
    nth: frozenset[tuple[int, int]] = frozenset()
    last_weekdays: frozenset[int] = frozenset()


def _parse_field(text: str, span: tuple[int, int], spec: _FieldSpec, inner: str) -> _Field:
    values: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last_weekdays: set[int] = set()
    last = False
    is_day_field = spec.name in ("day-of-month", "day-of-week")
    if text == "?" and is_day_field:
        return _Field(set(range(spec.low, spec.star_high + 1)))
    offset = span[0]
    for item in text.split(","):
        item_span = (offset, offset + len(item))
        offset += len(item) + 1
        upper = item.upper()

        def fail(message: str, hint: str = CRON_HINT, where: tuple[int, int] = item_span) -> InvalidInput:
            return _cron_error(f"cron field '{spec.name}' {message}", inner, where, hint)

        if not item:
            raise fail("has an empty list item", where=span)
        if item == "?" and is_day_field:
            raise fail("uses '?' inside a list; '?' must be the whole field (it means '*')")
        if spec.name == "day-of-month" and upper == "L":
            last = True
            continue
        if spec.name == "day-of-week" and "#" in upper:
            day_text, _, n_text = upper.partition("#")
            weekday = _value(day_text, spec, fail) % 7
            if not n_text.isdigit() or not 1 <= int(n_text) <= 5:
                raise fail(f"value {item!r}: the week after '#' must be 1-5", "e.g. TUE#2 = the second Tuesday")
            nth.add((weekday, int(n_text)))
            continue
        if spec.name == "day-of-week" and upper.endswith("L"):
            if upper == "L":
                raise fail("value 'L' needs a day before it", "e.g. FRIL or 5L = the last Friday of the month")
            last_weekdays.add(_value(upper[:-1], spec, fail) % 7)
            continue
        base, slash, step_text = upper.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise fail(f"step {step_text!r} in {item!r} must be a whole number >= 1")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.star_high
        elif "-" in base:
            low_text, _, high_text = base.partition("-")
            low, high = _value(low_text, spec, fail), _value(high_text, spec, fail)
            if spec.name == "day-of-week" and high == 0 and low > 0:
                high = 7  # FRI-SUN: Sunday as 7
            if high < low:
                raise fail(
                    f"range {item!r} goes backwards",
                    f"ranges do not wrap around; split it, e.g. 22-23,0-2 ({CRON_HINT})",
                )
        else:
            low = _value(base, spec, fail)
            high = spec.star_high if slash else low
            high = max(high, low)
        values.update(range(low, high + 1, step))
    return _Field(values, last, frozenset(nth), frozenset(last_weekdays))


def _value(token: str, spec: _FieldSpec, fail: Any) -> int:
    if token.isdigit():
        number = int(token)
        if not spec.low <= number <= spec.high:
            raise fail(f"value {number} is out of range {spec.low}-{spec.high}")
        return number
    if token in spec.names:
        return spec.names[token]
    kind = _NAME_KINDS.get(spec.name)
    raise fail(f"value {token!r} is not a number" + (f" or {kind}" if kind else ""))


# ------------------------------------------------------------------------------------------ helpers


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        raise InvalidInput(f"unknown time zone {name!r}", TIMEZONE_HINT) from None


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a naive wall time: ``fold=0`` = shifted past a gap, first of a repeated time."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _instant(value: datetime, zone: ZoneInfo) -> datetime:
    """An aware datetime as UTC; a naive one as a wall time in ``zone``."""
    if value.tzinfo is None or value.utcoffset() is None:
        return _resolve(value, zone)
    return value.astimezone(UTC)


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got {moment!r}")
    return moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _short(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if moment.second else "%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True)
class Occurrence:
    """One coming run, for ``opsctl window next``: the instant, the wall time the expression named,
    and a note when daylight saving time moved or merged it ("" otherwise)."""

    at: datetime
    wall: datetime
    note: str = ""


# ----------------------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Schedule:
    """A parsed, validated schedule. Build it with ``Schedule.parse`` (or ``from_dict``).

    ``start_date``, ``end_date`` and ``anchor`` are aware UTC datetimes. ``anchor`` is when the
    window was created: the first ``rate()`` occurrence when there is no ``start_date``, and for
    every kind the earliest moment a run (a cron match, before any offset) may be.
    """

    kind: ScheduleKind
    expression: str
    timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    offset_days: int = 0
    anchor: datetime | None = None
    cron: CronSpec | None = field(default=None, repr=False, compare=False)
    interval: timedelta | None = field(default=None, repr=False, compare=False)
    wall_time: datetime | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(
        cls,
        expression: str,
        timezone: str = "UTC",
        *,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        offset_days: int = 0,
        anchor: datetime | None = None,
    ) -> Schedule:
        """Parse and check ``expression`` with its options.

        Args:
            expression: ``cron(...)``, ``rate(...)`` or ``at(...)``.
            timezone: IANA zone the cron/at wall times are in.
            start_date, end_date: the active period (inclusive); naive = wall time in ``timezone``.
            offset_days: AWS schedule offset, 1-6 days after each cron match (0 = none).
            anchor: the window's creation time (aware); needed by ``rate()`` without ``start_date``.

        Raises:
            InvalidInput: bad expression, unknown zone, offset on a non-cron schedule or out of
                range, end not after start, a cron expression that can never match.
            ValueError: ``rate()`` with neither ``start_date`` nor ``anchor``, or a naive ``anchor``
                (the caller's bug, not the user's).
        """
        zone = _zone(timezone)
        match = _EXPRESSION.fullmatch(expression)
        if not match:
            text = expression.strip()
            if not text:
                raise InvalidInput("empty schedule", SCHEDULE_HINT)
            hint = SCHEDULE_HINT
            if len(text.split()) == 5 and "(" not in text:
                hint = f"wrap cron fields in cron(...): cron({text})"
            raise InvalidInput(f"schedule {text!r} is not cron(...), rate(...) or at(...)", hint)
        keyword, inner = match.group(1).lower(), match.group(2)
        start = None if start_date is None else _instant(start_date, zone)
        end = None if end_date is None else _instant(end_date, zone)
        anchor_utc = None if anchor is None else _aware(anchor, "anchor")
        if start is not None and end is not None and end <= start:
            raise InvalidInput(
                f"end date {end.isoformat()} is not after start date {start.isoformat()}",
                "no run could happen; move --end-date after --start-date",
            )
        if not isinstance(offset_days, int) or not 0 <= offset_days <= MAX_OFFSET_DAYS:
            raise InvalidInput(
                f"schedule offset {offset_days} days is out of range 1-{MAX_OFFSET_DAYS}",
                "the offset runs the window 1-6 days after each cron match (as AWS), e.g. --offset 2d",
            )
        common: dict[str, Any] = dict(
            timezone=timezone, start_date=start, end_date=end, offset_days=offset_days, anchor=anchor_utc
        )
        if keyword == "cron":
            spec = CronSpec.parse(inner)
            why = spec.impossible()
            if why:
                dom_span = list(re.finditer(r"\S+", inner))[2].span()
                months = ",".join(calendar.month_abbr[m].upper() for m in sorted(spec.months))
                raise _cron_error(
                    f"cron field 'day-of-month' {spec.text.split()[2]} never occurs in {months}",
                    inner,
                    dom_span,
                    "months have 29 (FEB, in leap years), 30 (APR, JUN, SEP, NOV) or 31 days; "
                    "use L for the last day of the month",
                )
            return cls(ScheduleKind.CRON, f"cron({spec.text})", cron=spec, **common)
        if offset_days:
            raise InvalidInput(
                f"a schedule offset only applies to cron() schedules, not {keyword}()",
                "drop --offset, or move --start-date (rate) or the at() time instead",
            )
        if keyword == "rate":
            m = _RATE.fullmatch(inner)
            if not m:
                raise InvalidInput(f"bad rate expression {expression.strip()!r}", RATE_HINT)
            count, unit = int(m.group(1)), m.group(2).lower().rstrip("s")
            if count < 1:
                raise InvalidInput(f"rate({inner.strip()}) must be at least 1 {unit}", RATE_HINT)
            try:
                interval = count * _RATE_UNITS[unit]
            except OverflowError:
                raise InvalidInput(f"rate({inner.strip()}) is too long", RATE_HINT) from None
            if start is None and anchor_utc is None:
                raise ValueError("rate() schedules need start_date or anchor (the window's creation time)")
            text = f"rate({count} {unit}{'' if count == 1 else 's'})"
            return cls(ScheduleKind.RATE, text, interval=interval, **common)
        if keyword == "at":
            return cls(ScheduleKind.AT, **_parse_at(inner, expression), **common)
        raise InvalidInput(f"unknown schedule type {keyword!r} in {expression.strip()!r}", SCHEDULE_HINT)

    # ------------------------------------------------------------------------------- queries

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def earliest(self) -> datetime | None:
        """The start of the active period: ``start_date``, else ``anchor`` (creation), else None."""
        return self.start_date if self.start_date is not None else self.anchor

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run strictly after ``moment`` (aware), in UTC; None when there is no more."""
        return next((run for run, _ in self._runs(_aware(moment, "moment"))), None)

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` runs strictly after ``after``, in UTC (fewer when the schedule ends)."""
        return [occurrence.at for occurrence in self.preview(after, count)]

    def preview(self, after: datetime, count: int) -> list[Occurrence]:
        """Like ``upcoming``, with the wall time of each run and a note when DST moved or merged it."""
        out: list[Occurrence] = []
        if count <= 0:
            return out
        for run, wall in self._runs(_aware(after, "after")):
            out.append(Occurrence(run, wall, self._note(run, wall)))
            if len(out) >= count:
                break
        return out

    def describe(self) -> str:
        """Canonical one-line text: expression, zone, offset and active period."""
        parts = [f"{self.expression} in {self.timezone}"]
        if self.offset_days:
            parts.append(f"{self.offset_days} day{'s' if self.offset_days > 1 else ''} after each match")
        if self.start_date is not None:
            parts.append(f"from {_short(self.start_date)}")
        elif self.kind is ScheduleKind.RATE and self.anchor is not None:
            parts.append(f"from {_short(self.anchor)} (creation)")
        if self.end_date is not None:
            parts.append(f"until {_short(self.end_date)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready storage form; ``from_dict`` parses it again (so stored rows are re-validated)."""
        return {
            "expression": self.expression,
            "timezone": self.timezone,
            "start_date": _iso(self.start_date),
            "end_date": _iso(self.end_date),
            "offset_days": self.offset_days,
            "anchor": _iso(self.anchor),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        return cls.parse(
            data["expression"],
            data.get("timezone", "UTC"),
            start_date=_from_iso(data.get("start_date")),
            end_date=_from_iso(data.get("end_date")),
            offset_days=int(data.get("offset_days", 0)),
            anchor=_from_iso(data.get("anchor")),
        )

    # ---------------------------------------------------------------------------- internals

    def _runs(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(run instant in UTC, wall time named by the expression) strictly after ``after``, in order."""
        try:
            if self.kind is ScheduleKind.CRON:
                yield from self._cron_runs(after)
            elif self.kind is ScheduleKind.RATE:
                yield from self._rate_runs(after)
            else:
                yield from self._at_runs(after)
        except OverflowError:  # the calendar ends at year 9999
            return

    def _cron_runs(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        assert self.cron is not None
        zone, end, earliest = self.zone, self.end_date, self.earliest
        offset = timedelta(days=self.offset_days)
        # Wall dates whose runs may fall after `after` (two days of slack for zones far from UTC).
        first = after.astimezone(zone).date() - offset - timedelta(days=2)
        if earliest is not None:
            first = max(first, earliest.astimezone(zone).date() - timedelta(days=1))
        pending: list[tuple[datetime, datetime]] = []  # heap: DST shifts can reorder nearby runs
        last: datetime | None = None
        for day in self.cron.matching_days(first):
            run_day = datetime.combine(day + offset, time())
            floor = run_day.replace(tzinfo=UTC) - _MAX_ZONE_OFFSET  # no run of this day or later is earlier
            while pending and pending[0][0] < floor:
                run, wall = heapq.heappop(pending)
                if end is not None and run > end:
                    return
                if run != last:
                    last = run
                    yield run, wall
            if end is not None and floor > end:
                break
            for hour, minute in self.cron.times:
                match_wall = datetime.combine(day, time(hour, minute))
                if earliest is not None and _resolve(match_wall, zone) < earliest:
                    continue
                run_wall = match_wall + offset
                run = _resolve(run_wall, zone)
                if run > after:
                    heapq.heappush(pending, (run, run_wall))
        while pending:
            run, wall = heapq.heappop(pending)
            if end is not None and run > end:
                return
            if run != last:
                last = run
                yield run, wall

    def _rate_runs(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        assert self.interval is not None
        first = self.earliest
        assert first is not None
        step = self.interval
        run = first if after < first else first + ((after - first) // step + 1) * step
        zone = self.zone
        while self.end_date is None or run <= self.end_date:
            yield run, run.astimezone(zone).replace(tzinfo=None)
            run += step

    def _at_runs(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        assert self.wall_time is not None
        run = _resolve(self.wall_time, self.zone)
        earliest = self.earliest
        if run > after and (earliest is None or run >= earliest) and (self.end_date is None or run <= self.end_date):
            yield run, self.wall_time

    def _note(self, run: datetime, wall: datetime) -> str:
        if self.kind is ScheduleKind.RATE:
            return ""
        zone = self.zone
        local = run.astimezone(zone)
        if local.replace(tzinfo=None) != wall:
            return (
                f"{wall:%H:%M} does not exist on {wall:%Y-%m-%d} in {self.timezone} (clocks go forward); "
                f"runs at {local:%H:%M %Z}"
            )
        if wall.replace(tzinfo=zone, fold=1).utcoffset() != local.utcoffset():
            return (
                f"{wall:%H:%M} happens twice on {wall:%Y-%m-%d} in {self.timezone} (clocks go back); "
                f"runs once, at the first ({local:%H:%M %Z})"
            )
        return ""


def _parse_at(inner: str, expression: str) -> dict[str, Any]:
    if _AT_WITH_ZONE.fullmatch(inner):
        raise InvalidInput(
            f"at() takes a wall time without a UTC offset, got {expression.strip()!r}",
            "drop the 'Z'/offset and set the window's time zone instead, "
            "e.g. at(2026-12-24T22:00) with --timezone Europe/Paris",
        )
    m = _AT.fullmatch(inner)
    if not m:
        raise InvalidInput(f"bad at() expression {expression.strip()!r}", AT_HINT)
    year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
    second = int(m.group(6) or 0)
    try:
        wall = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise InvalidInput(f"bad at() time {inner.strip()!r}: {exc}", AT_HINT) from None
    text = wall.strftime("%Y-%m-%dT%H:%M:%S" if second else "%Y-%m-%dT%H:%M")
    return {"expression": f"at({text})", "wall_time": wall}
