"""Maintenance-window schedules: cron/rate/at syntax, errors, next runs, DST, active period, offset."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.windows import CronSpec, Schedule, ScheduleKind

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
CRON_HINT = "cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK), e.g. cron(0 2 * * SUN)"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def paris(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)  # type: ignore[misc]


def runs(expression: str, after: datetime, count: int = 5, timezone: str = "UTC", **kw: object) -> list[datetime]:
    return Schedule.parse(expression, timezone, **kw).upcoming(after, count)  # type: ignore[arg-type]


def local_days(moments: list[datetime], zone: ZoneInfo) -> Counter[date]:
    return Counter(m.astimezone(zone).date() for m in moments)


# ------------------------------------------------------------------------------------ cron syntax


def test_numbers_and_stars() -> None:
    assert runs("cron(15 3 * * *)", utc(2026, 1, 1), 2) == [utc(2026, 1, 1, 3, 15), utc(2026, 1, 2, 3, 15)]


def test_lists_ranges_and_steps() -> None:
    spec = Schedule.parse("cron(0,30 */6 1-10/3 1,6-7 *)").cron
    assert spec is not None
    assert spec.minutes == (0, 30)
    assert spec.hours == (0, 6, 12, 18)
    assert spec.days == {1, 4, 7, 10}
    assert spec.months == {1, 6, 7}


def test_a_value_with_a_step_runs_to_the_end_of_the_field() -> None:
    spec = CronSpec.parse("5/20 0 * * *")
    assert spec.minutes == (5, 25, 45)


def test_month_and_day_names_are_case_insensitive() -> None:
    spec = CronSpec.parse("0 2 * jan,Mar-MAY mon-fri")
    assert spec.months == {1, 3, 4, 5}
    assert spec.weekdays == {1, 2, 3, 4, 5}
    assert spec.text == "0 2 * JAN,MAR-MAY MON-FRI"


@pytest.mark.parametrize("field", ["0", "7", "SUN", "sun"])
def test_zero_and_seven_are_sunday(field: str) -> None:
    # 2026-01-04 is a Sunday
    assert runs(f"cron(0 2 * * {field})", utc(2026, 1, 1), 2) == [utc(2026, 1, 4, 2), utc(2026, 1, 11, 2)]


def test_a_day_of_week_range_may_end_on_sunday() -> None:
    assert CronSpec.parse("0 2 * * FRI-SUN").weekdays == {5, 6, 0}
    assert CronSpec.parse("0 2 * * 5-7").weekdays == {5, 6, 0}


def test_question_mark_means_star_in_the_day_fields() -> None:
    schedule = Schedule.parse("cron(0 2 ? * MON)")
    assert schedule.expression == "cron(0 2 * * MON)"
    assert schedule.upcoming(utc(2026, 1, 1), 1) == [utc(2026, 1, 5, 2)]


def test_canonical_expression_normalises_spaces_and_case() -> None:
    assert Schedule.parse("  cron( 0   2 *  * sun )  ").expression == "cron(0 2 * * SUN)"
    assert Schedule.parse("CRON(0 2 * * SUN)").kind is ScheduleKind.CRON


def test_both_day_fields_restricted_match_either_vixie_rule() -> None:
    # "8th-14th OR Tuesday", not "the Tuesday between the 8th and the 14th"
    got = runs("cron(0 2 8-14 * TUE)", utc(2026, 9, 1), 10)
    days = [m.day for m in got]
    assert days == [1, 8, 9, 10, 11, 12, 13, 14, 15, 22]  # Sep 2026: Tuesdays are 1, 8, 15, 22, 29


def test_a_day_field_starting_with_star_is_unrestricted_so_both_must_match() -> None:
    # */2 = odd days; AND Monday (Vixie cron: a field starting with '*' is "unrestricted")
    got = runs("cron(0 2 */2 * MON)", utc(2026, 1, 1), 4)
    assert all(m.day % 2 == 1 and m.weekday() == 0 for m in got)
    assert [m.date() for m in got] == [date(2026, 1, 5), date(2026, 1, 19), date(2026, 2, 9), date(2026, 2, 23)]


def test_nth_weekday_extension() -> None:
    # Patch Tuesday: the second Tuesday of the month
    got = runs("cron(0 2 * * TUE#2)", utc(2026, 1, 1), 4)
    assert [m.date() for m in got] == [date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10), date(2026, 4, 14)]


def test_fifth_weekday_only_in_months_that_have_one() -> None:
    got = runs("cron(0 0 * * FRI#5)", utc(2026, 1, 1), 3)
    assert [m.date() for m in got] == [date(2026, 1, 30), date(2026, 5, 29), date(2026, 7, 31)]


def test_last_weekday_extension() -> None:
    got = runs("cron(0 2 * * SUNL)", utc(2026, 1, 1), 3)
    assert [m.date() for m in got] == [date(2026, 1, 25), date(2026, 2, 22), date(2026, 3, 29)]
    assert CronSpec.parse("0 2 * * 0L").last_weekdays == {0}


def test_last_day_of_month_extension() -> None:
    got = runs("cron(0 3 L * *)", utc(2028, 1, 1), 3)
    assert [m.date() for m in got] == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31)]


def test_next_feb_29_is_found() -> None:
    assert runs("cron(0 0 29 2 *)", utc(2026, 1, 1), 3) == [utc(2028, 2, 29), utc(2032, 2, 29), utc(2036, 2, 29)]
    # 2100 is not a leap year: eight years between 2096 and 2104
    assert runs("cron(0 0 29 2 *)", utc(2096, 3, 1), 1) == [utc(2104, 2, 29)]


def test_matches() -> None:
    spec = CronSpec.parse("0 0 L 2 *")
    assert spec.matches(date(2028, 2, 29)) and spec.matches(date(2026, 2, 28))
    assert not spec.matches(date(2028, 2, 28)) and not spec.matches(date(2026, 3, 31))


# --------------------------------------------------------------------------------------- errors


def error(expression: str, timezone: str = "UTC", **kw: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        Schedule.parse(expression, timezone, **kw)  # type: ignore[arg-type]
    return info.value


def test_out_of_range_names_the_field_and_points_at_it() -> None:
    exc = error("cron(0 25 * * *)")
    assert exc.message == "cron field 'hour' value 25 is out of range 0-23\n  cron(0 25 * * *)\n         ^^"
    assert exc.hint == CRON_HINT


def test_the_caret_points_at_the_bad_list_item() -> None:
    exc = error("cron(0 1,2,99 * * *)")
    first, shown, pointer = exc.message.split("\n")
    assert first == "cron field 'hour' value 99 is out of range 0-23"
    assert shown[pointer.index("^") : pointer.rindex("^") + 1] == "99"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(60 * * * *)", "cron field 'minute' value 60 is out of range 0-59"),
        ("cron(0 0 0 * *)", "cron field 'day-of-month' value 0 is out of range 1-31"),
        ("cron(0 0 32 * *)", "cron field 'day-of-month' value 32 is out of range 1-31"),
        ("cron(0 0 * 13 *)", "cron field 'month' value 13 is out of range 1-12"),
        ("cron(0 0 * * 8)", "cron field 'day-of-week' value 8 is out of range 0-7"),
        ("cron(0 0 * FOO *)", "cron field 'month' value 'FOO' is not a number or a month name (JAN-DEC)"),
        ("cron(0 0 * * FOO)", "cron field 'day-of-week' value 'FOO' is not a number or a day name (SUN-SAT)"),
        ("cron(MON 0 * * *)", "cron field 'minute' value 'MON' is not a number"),
        ("cron(0 22-2 * * *)", "cron field 'hour' range '22-2' goes backwards"),
        ("cron(*/0 * * * *)", "cron field 'minute' step '0' in '*/0' must be a whole number >= 1"),
        ("cron(*/x * * * *)", "cron field 'minute' step 'X' in '*/x' must be a whole number >= 1"),
        ("cron(1,,2 * * * *)", "cron field 'minute' has an empty list item"),
        ("cron(? * * * *)", "cron field 'minute' value '?' is not a number"),
        ("cron(0 0 1,? * *)", "cron field 'day-of-month' uses '?' inside a list"),
        ("cron(0 0 * * TUE#6)", "cron field 'day-of-week' value 'TUE#6': the week after '#' must be 1-5"),
        ("cron(0 0 * * L)", "cron field 'day-of-week' value 'L' needs a day before it"),
        ("cron(0 0 * * MON-FRI#2)", "cron field 'day-of-week' value 'MON-FRI' is not a number or a day name"),
        ("cron(0 0 * *)", "cron() needs 5 fields (MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK), got 4"),
    ],
)
def test_cron_errors(expression: str, message: str) -> None:
    exc = error(expression)
    assert exc.message.startswith(message)
    assert f"\n  {expression}\n" in exc.message
    assert exc.hint


def test_aws_six_field_cron_gets_a_hint_to_drop_the_year() -> None:
    exc = error("cron(0 2 ? * SUN *)")
    assert "got 6" in exc.message
    assert "YEAR" in exc.hint and "cron(0 2 * * SUN)" in exc.hint


@pytest.mark.parametrize(
    ("expression", "never"),
    [("cron(0 0 31 2 *)", "31 never occurs in FEB"), ("cron(0 0 30,31 2 *)", "30,31 never occurs in FEB"),
     ("cron(0 0 31 APR,6,SEP,11 *)", "31 never occurs in APR,JUN,SEP,NOV")],
)  # fmt: skip
def test_impossible_day_and_month_are_refused(expression: str, never: str) -> None:
    exc = error(expression)
    assert exc.message.startswith(f"cron field 'day-of-month' {never}")
    assert "L for the last day" in exc.hint


@pytest.mark.parametrize(
    "expression",
    ["cron(0 0 29 2 *)", "cron(0 0 31 1,2 *)", "cron(0 0 L 2 *)", "cron(0 0 31 2 MON)", "cron(0 0 30 */2 *)"],
)
def test_possible_or_unprovable_combinations_are_accepted(expression: str) -> None:
    schedule = Schedule.parse(expression)
    assert (schedule.kind, schedule.expression) == (ScheduleKind.CRON, expression)


def test_a_star_day_of_week_leaves_the_day_of_month_to_decide() -> None:
    # day-of-week starts with '*': both fields must match, and Feb 30 never comes
    assert "30 never occurs in FEB" in error("cron(0 0 30 2 */2)").message


def test_an_unvalidated_impossible_expression_gives_up_instead_of_looping() -> None:
    # e.g. a row stored before the check existed: the bounded search answers None
    schedule = dataclasses.replace(Schedule.parse("cron(0 0 1 2 *)"), cron=CronSpec.parse("0 0 31 2 *"))
    assert schedule.next_after(utc(2026, 1, 1)) is None
    assert schedule.upcoming(utc(2026, 1, 1), 3) == []


def test_unknown_time_zone() -> None:
    exc = error("cron(0 2 * * *)", "Europe/Pariss")
    assert exc.message == "unknown time zone 'Europe/Pariss'"
    assert exc.hint == "use an IANA name such as Europe/Paris"
    for name in ("", "../etc/passwd", "Europe", "CEST+2"):
        assert error("cron(0 2 * * *)", name).hint == "use an IANA name such as Europe/Paris"


@pytest.mark.parametrize(
    ("expression", "message", "hint"),
    [
        ("", "empty schedule", "cron(0 2 * * SUN)"),
        ("0 2 * * *", "is not cron(...), rate(...) or at(...)", "cron(0 2 * * *)"),
        ("every(5 minutes)", "unknown schedule type 'every'", "rate(12 hours)"),
        ("rate(0 minutes)", "must be at least 1 minute", "rate("),
        ("rate(1.5 hours)", "bad rate expression", "whole N"),
        ("rate(2 weeks)", "bad rate expression", "minutes|hours|days"),
        ("rate(minutes)", "bad rate expression", "rate("),
        ("at(2026-12-24T22:00Z)", "at() takes a wall time without a UTC offset", "--timezone"),
        ("at(2026-12-24T22:00:00+01:00)", "at() takes a wall time without a UTC offset", "--timezone"),
        ("at(2026-02-30T22:00)", "bad at() time", "at(YYYY-MM-DDTHH:MM[:SS])"),
        ("at(2026-12-24 22:00)", "bad at() expression", "at(YYYY-MM-DDTHH:MM[:SS])"),
        ("at(2026-12-24T25:00)", "bad at() time", "at("),
    ],
)
def test_expression_errors(expression: str, message: str, hint: str) -> None:
    exc = error(expression, anchor=utc(2026, 1, 1))
    assert message in exc.message
    assert hint in exc.hint


@pytest.mark.parametrize("expression", ["rate(1 day)", "at(2026-12-24T22:00)"])
def test_offset_only_with_cron(expression: str) -> None:
    exc = error(expression, offset_days=2, anchor=utc(2026, 1, 1))
    assert "only applies to cron() schedules" in exc.message


@pytest.mark.parametrize("days", [-1, 7, 30])
def test_offset_range_follows_aws(days: int) -> None:
    exc = error("cron(0 2 * * TUE)", offset_days=days)
    assert f"schedule offset {days} days is out of range 1-6" == exc.message


@pytest.mark.parametrize("end", [utc(2026, 1, 1), utc(2025, 12, 31)])
def test_end_must_be_after_start(end: datetime) -> None:
    exc = error("cron(0 2 * * *)", start_date=utc(2026, 1, 1), end_date=end)
    assert "is not after start date" in exc.message


def test_caller_mistakes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="start_date or anchor"):
        Schedule.parse("rate(1 hour)")
    with pytest.raises(ValueError, match="timezone-aware"):
        Schedule.parse("cron(0 2 * * *)").next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        Schedule.parse("rate(1 hour)", anchor=datetime(2026, 1, 1))


# ------------------------------------------------------------------------------- next / upcoming


def test_next_after_is_strictly_after_and_in_utc() -> None:
    schedule = Schedule.parse("cron(0 2 * * *)", "Europe/Paris")
    first = schedule.next_after(utc(2026, 1, 10))
    assert first == utc(2026, 1, 10, 1) and first.tzinfo is UTC
    assert schedule.next_after(first) == utc(2026, 1, 11, 1)
    # any aware moment is accepted
    assert schedule.next_after(paris(2026, 1, 10, 1, 59)) == first


def test_upcoming_count() -> None:
    schedule = Schedule.parse("cron(*/20 * * * *)")
    assert schedule.upcoming(utc(2026, 1, 1, 0, 50), 4) == [
        utc(2026, 1, 1, 1, 0), utc(2026, 1, 1, 1, 20), utc(2026, 1, 1, 1, 40), utc(2026, 1, 1, 2, 0)
    ]  # fmt: skip
    assert schedule.upcoming(utc(2026, 1, 1), 0) == []


def test_cron_across_month_and_year_ends() -> None:
    assert runs("cron(59 23 31 12 *)", utc(2026, 12, 31, 23, 59), 1) == [utc(2027, 12, 31, 23, 59)]
    assert runs("cron(0 0 1 * *)", utc(2026, 12, 15), 2) == [utc(2027, 1, 1), utc(2027, 2, 1)]


def test_rate_runs_from_the_creation_time() -> None:
    schedule = Schedule.parse("rate(90 minutes)", anchor=utc(2026, 1, 1, 10, 7))
    assert schedule.expression == "rate(90 minutes)"
    assert schedule.upcoming(utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 10, 7),
        utc(2026, 1, 1, 11, 37),
        utc(2026, 1, 1, 13, 7),
    ]
    assert schedule.next_after(utc(2026, 1, 1, 11, 37)) == utc(2026, 1, 1, 13, 7)
    assert schedule.next_after(utc(2026, 3, 1)) == utc(2026, 3, 1, 1, 7)  # 90 min divides a day


def test_rate_runs_from_the_start_date_when_given() -> None:
    schedule = Schedule.parse("rate(1 day)", start_date=utc(2026, 2, 1, 3), anchor=utc(2026, 1, 1))
    assert schedule.upcoming(utc(2026, 1, 15), 2) == [utc(2026, 2, 1, 3), utc(2026, 2, 2, 3)]


@pytest.mark.parametrize(
    ("text", "canonical", "step"),
    [("rate(1 minute)", "rate(1 minute)", timedelta(minutes=1)),
     ("rate(1 minutes)", "rate(1 minute)", timedelta(minutes=1)),
     ("rate(2 hour)", "rate(2 hours)", timedelta(hours=2)),
     ("RATE(3 Days)", "rate(3 days)", timedelta(days=3)),
     ("rate(1 day)", "rate(1 day)", timedelta(days=1))],
)  # fmt: skip
def test_rate_units(text: str, canonical: str, step: timedelta) -> None:
    schedule = Schedule.parse(text, anchor=utc(2026, 1, 1))
    assert schedule.expression == canonical
    first, second = schedule.upcoming(utc(2026, 1, 1), 2)
    assert second - first == step


def test_rate_is_elapsed_time_across_dst() -> None:
    # created at 02:30 CET the day before spring forward: 24 h later is 03:30 CEST
    schedule = Schedule.parse("rate(1 day)", "Europe/Paris", anchor=paris(2026, 3, 28, 2, 30))
    got = schedule.upcoming(utc(2026, 3, 1), 3)
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 1, 30)]
    assert got[1].astimezone(PARIS).hour == 3 and got[2].astimezone(PARIS).hour == 3
    assert all(o.note == "" for o in schedule.preview(utc(2026, 3, 1), 3))


def test_at_runs_once_in_the_window_zone() -> None:
    schedule = Schedule.parse("at(2026-12-24T22:00)", "Europe/Paris")
    assert schedule.expression == "at(2026-12-24T22:00)"
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2026, 12, 24, 21)
    assert schedule.upcoming(utc(2026, 1, 1), 5) == [utc(2026, 12, 24, 21)]
    assert schedule.next_after(utc(2026, 12, 24, 21)) is None  # strictly after


def test_at_with_seconds() -> None:
    schedule = Schedule.parse("at(2026-12-24T22:00:30)")
    assert schedule.expression == "at(2026-12-24T22:00:30)"
    assert Schedule.parse("at(2026-12-24T22:00:00)").expression == "at(2026-12-24T22:00)"
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2026, 12, 24, 22, 0, 30)


def test_at_in_the_past_or_before_creation_never_runs() -> None:
    assert Schedule.parse("at(2020-01-01T00:00)").next_after(utc(2026, 1, 1)) is None
    created_later = Schedule.parse("at(2026-06-01T00:00)", anchor=utc(2026, 7, 1))
    assert created_later.next_after(utc(2026, 1, 1)) is None


def test_at_outside_start_and_end_never_runs() -> None:
    kw = {"start_date": utc(2026, 1, 1), "end_date": utc(2026, 2, 1)}
    assert Schedule.parse("at(2026-03-01T00:00)", **kw).next_after(utc(2025, 1, 1)) is None  # type: ignore[arg-type]
    assert Schedule.parse("at(2025-12-31T23:59)", **kw).next_after(utc(2025, 1, 1)) is None  # type: ignore[arg-type]
    assert Schedule.parse("at(2026-02-01T00:00)", **kw).next_after(utc(2025, 1, 1)) == utc(2026, 2, 1)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- daylight saving


def test_paris_spring_forward_nonexistent_time_is_shifted_by_the_gap() -> None:
    # last Sunday of March 2026: 02:00 CET -> 03:00 CEST; 02:30 does not exist
    schedule = Schedule.parse("cron(30 2 * * *)", "Europe/Paris")
    got = schedule.upcoming(utc(2026, 3, 27, 12), 3)
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert got[1] == paris(2026, 3, 29, 3, 30)  # 03:30 CEST, not 03:00 and not skipped
    notes = [o.note for o in schedule.preview(utc(2026, 3, 27, 12), 3)]
    assert notes == [
        "",
        "02:30 does not exist on 2026-03-29 in Europe/Paris (clocks go forward); runs at 03:30 CEST",
        "",
    ]


def test_paris_fall_back_repeated_time_runs_once_at_the_first() -> None:
    # last Sunday of October 2026: 03:00 CEST -> 02:00 CET; 02:30 happens at 00:30 and 01:30 UTC
    schedule = Schedule.parse("cron(30 2 * * *)", "Europe/Paris")
    got = schedule.upcoming(utc(2026, 10, 23, 12), 3)
    assert got == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # (ambiguous aware times never compare equal across zones, PEP 495: compare in UTC)
    assert got[1] == paris(2026, 10, 25, 2, 30, fold=0).astimezone(UTC)
    assert schedule.next_after(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)  # not the CET 02:30
    assert schedule.preview(utc(2026, 10, 24, 12), 1)[0].note == (
        "02:30 happens twice on 2026-10-25 in Europe/Paris (clocks go back); runs once, at the first (02:30 CEST)"
    )


@pytest.mark.parametrize("timezone", ["Europe/Paris", "America/New_York"])
@pytest.mark.parametrize("hour", [1, 2, 3])
def test_a_daily_cron_runs_exactly_once_every_day_across_both_changes(timezone: str, hour: int) -> None:
    zone = ZoneInfo(timezone)
    got = runs(f"cron(30 {hour} * * *)", utc(2025, 12, 31, 12), 366, timezone)
    assert set(local_days(got, zone).values()) == {1}
    assert [d for d in local_days(got, zone)] == [date(2026, 1, 1) + timedelta(days=i) for i in range(366)]
    assert got == sorted(got)


def test_hourly_cron_on_the_change_days_in_paris() -> None:
    got = runs("cron(0 * * * *)", utc(2026, 1, 1), 24 * 366, "Europe/Paris")
    per_day = local_days(got, PARIS)
    assert per_day[date(2026, 3, 29)] == 23  # 02:00 shifts onto 03:00 CEST, which runs once
    assert per_day[date(2026, 10, 25)] == 24  # 02:00 runs once (CEST), not again in CET
    assert paris(2026, 10, 25, 2, 0, fold=0).astimezone(UTC) in got
    assert paris(2026, 10, 25, 2, 0, fold=1).astimezone(UTC) not in got
    gaps = Counter(b - a for a, b in zip(got, got[1:], strict=False))
    assert gaps == {timedelta(hours=1): len(got) - 2, timedelta(hours=2): 1}


def test_quarter_hours_in_the_gap_merge_with_the_times_after_it() -> None:
    got = runs("cron(*/15 * * * *)", paris(2026, 3, 29, 1, 30), 6, "Europe/Paris")
    assert [m.astimezone(PARIS).strftime("%H:%M %Z") for m in got] == [
        "01:45 CET", "03:00 CEST", "03:15 CEST", "03:30 CEST", "03:45 CEST", "04:00 CEST"
    ]  # fmt: skip


def test_shifted_times_are_returned_in_time_order() -> None:
    # 02:45 (shifted to 03:45 CEST) comes after 03:15 CEST
    got = runs("cron(15,45 2-3 * * *)", utc(2026, 3, 28, 12), 3, "Europe/Paris")
    assert [m.astimezone(PARIS).strftime("%H:%M") for m in got] == ["03:15", "03:45", "02:15"]
    assert got == sorted(got)


def test_new_york_spring_forward() -> None:
    # second Sunday of March 2026: 02:00 EST -> 03:00 EDT
    got = runs("cron(30 2 * * *)", utc(2026, 3, 7, 12), 2, "America/New_York")
    assert got == [datetime(2026, 3, 8, 3, 30, tzinfo=NEW_YORK), datetime(2026, 3, 9, 2, 30, tzinfo=NEW_YORK)]
    assert got[0] == utc(2026, 3, 8, 7, 30)


def test_new_york_fall_back() -> None:
    # first Sunday of November 2026: 02:00 EDT -> 01:00 EST; 01:30 happens twice
    got = runs("cron(30 1 * * *)", utc(2026, 10, 31, 12), 2, "America/New_York")
    assert got == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]  # 01:30 EDT, then 01:30 EST
    assert got[0].astimezone(NEW_YORK).tzname() == "EDT"


def test_at_follows_the_cron_dst_rules() -> None:
    assert Schedule.parse("at(2026-03-29T02:30)", "Europe/Paris").next_after(utc(2026, 1, 1)) == paris(
        2026, 3, 29, 3, 30
    )
    assert Schedule.parse("at(2026-10-25T02:30)", "Europe/Paris").next_after(utc(2026, 1, 1)) == utc(
        2026, 10, 25, 0, 30
    )


# ------------------------------------------------------------------------------ start / end


def test_aws_start_date_example() -> None:
    # AWS docs: --start-date 2021-01-01T00:00:00-08:00, America/Los_Angeles, cron(0 09 ? * WED *)
    schedule = Schedule.parse(
        "cron(0 09 * * WED)",
        "America/Los_Angeles",
        start_date=datetime.fromisoformat("2021-01-01T00:00:00-08:00"),
    )
    assert schedule.next_after(utc(2020, 6, 1)) == utc(2021, 1, 6, 17)  # Wed 6 Jan 2021, 09:00 PST


def test_start_date_is_inclusive_and_nothing_runs_before_it() -> None:
    schedule = Schedule.parse("cron(0 * * * *)", start_date=utc(2026, 5, 1, 3))
    assert schedule.upcoming(utc(2026, 1, 1), 2) == [utc(2026, 5, 1, 3), utc(2026, 5, 1, 4)]


def test_end_date_is_inclusive_and_nothing_runs_after_it() -> None:
    schedule = Schedule.parse("cron(0 0 * * *)", start_date=utc(2026, 1, 1), end_date=utc(2026, 1, 3))
    assert schedule.upcoming(utc(2025, 1, 1), 10) == [utc(2026, 1, 1), utc(2026, 1, 2), utc(2026, 1, 3)]
    assert schedule.next_after(utc(2026, 1, 3)) is None
    assert Schedule.parse("rate(1 day)", anchor=utc(2026, 1, 1), end_date=utc(2026, 1, 2, 12)).upcoming(
        utc(2025, 1, 1), 5
    ) == [utc(2026, 1, 1), utc(2026, 1, 2)]


def test_naive_dates_are_wall_times_in_the_window_zone() -> None:
    schedule = Schedule.parse("cron(0 * * * *)", "Europe/Paris", start_date=datetime(2026, 7, 1, 6))
    assert schedule.start_date == utc(2026, 7, 1, 4)
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2026, 7, 1, 4)


def test_far_start_date_is_found_quickly() -> None:
    schedule = Schedule.parse("cron(0 2 1 1 *)", start_date=utc(2090, 1, 2))
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2091, 1, 1, 2)


# ---------------------------------------------------------------------------------------- offset


def test_offset_second_tuesday_plus_two_days() -> None:
    schedule = Schedule.parse("cron(0 2 * * TUE#2)", "Europe/Paris", offset_days=2)
    got = schedule.upcoming(utc(2026, 1, 1), 3)
    assert [m.astimezone(PARIS) for m in got] == [paris(2026, 1, 15, 2), paris(2026, 2, 12, 2), paris(2026, 3, 12, 2)]
    assert all(m.astimezone(PARIS).weekday() == 3 for m in got)  # Thursdays


def test_aws_offset_example_third_tuesday_plus_two() -> None:
    # AWS: cron(30 23 ? * TUE#3 *) with --schedule-offset 2 runs at 23:30 two days later
    got = runs("cron(30 23 * * TUE#3)", utc(2026, 1, 1), 2, offset_days=2)
    assert got == [utc(2026, 1, 22, 23, 30), utc(2026, 2, 19, 23, 30)]


def test_offset_keeps_the_wall_time_across_dst() -> None:
    # Friday 27 March 02:30 CET + 2 days = Sunday 29 March 02:30, which does not exist -> 03:30 CEST
    schedule = Schedule.parse("cron(30 2 27 3 *)", "Europe/Paris", offset_days=2)
    assert schedule.next_after(utc(2026, 1, 1)) == paris(2026, 3, 29, 3, 30)
    assert "does not exist on 2026-03-29" in schedule.preview(utc(2026, 1, 1), 1)[0].note
    schedule = Schedule.parse("cron(0 12 23 10 *)", "Europe/Paris", offset_days=3)
    assert schedule.next_after(utc(2026, 1, 1)) == paris(2026, 10, 26, 12)  # 12:00 CET, 72+1 hours later


def test_a_match_before_the_window_starts_gives_no_run_even_with_the_offset_ahead() -> None:
    # AWS: created on Wednesday with a Tuesday cron and a 2-day offset, it does not run the next day
    created = utc(2026, 1, 7, 12)  # Wednesday
    schedule = Schedule.parse("cron(0 2 * * TUE)", offset_days=2, anchor=created)
    assert schedule.next_after(created) == utc(2026, 1, 15, 2)  # not Thursday 8 January
    # without the anchor only the run time counts
    assert Schedule.parse("cron(0 2 * * TUE)", offset_days=2).next_after(created) == utc(2026, 1, 8, 2)
    with_start = Schedule.parse("cron(0 2 * * TUE)", offset_days=2, start_date=created)
    assert with_start.next_after(utc(2026, 1, 1)) == utc(2026, 1, 15, 2)


def test_the_end_date_limits_the_run_not_the_match() -> None:
    schedule = Schedule.parse("cron(0 2 * * TUE)", offset_days=2, end_date=utc(2026, 1, 14))
    # the match on Tue 13 Jan would run Thu 15 Jan, after the end
    assert schedule.upcoming(utc(2026, 1, 2), 5) == [utc(2026, 1, 8, 2)]


# -------------------------------------------------------------------------- describe / storage


def test_describe() -> None:
    schedule = Schedule.parse(
        "cron(0 2 * * tue#2)",
        "Europe/Paris",
        offset_days=2,
        start_date=datetime.fromisoformat("2026-04-01T00:00:00+02:00"),
        end_date=utc(2026, 12, 31),
    )
    assert schedule.describe() == (
        "cron(0 2 * * TUE#2) in Europe/Paris, 2 days after each match, from 2026-03-31T22:00Z, until 2026-12-31T00:00Z"
    )
    assert Schedule.parse("rate(1 hour)", anchor=utc(2026, 1, 1)).describe() == (
        "rate(1 hour) in UTC, from 2026-01-01T00:00Z (creation)"
    )
    assert Schedule.parse("at(2026-12-24T22:00)", "Asia/Tokyo").describe() == "at(2026-12-24T22:00) in Asia/Tokyo"


@pytest.mark.parametrize(
    ("expression", "kw"),
    [
        ("cron(0 2 * * TUE#2)", {"timezone": "Europe/Paris", "offset_days": 2, "start_date": utc(2026, 1, 1)}),
        ("rate(15 minutes)", {"anchor": utc(2026, 1, 1, 10, 3, 7), "end_date": utc(2027, 1, 1)}),
        ("at(2026-12-24T22:00)", {"timezone": "America/New_York", "anchor": utc(2026, 1, 1)}),
    ],
)
def test_to_dict_from_dict_round_trip(expression: str, kw: dict[str, object]) -> None:
    schedule = Schedule.parse(expression, **kw)  # type: ignore[arg-type]
    data = schedule.to_dict()
    assert set(data) == {"expression", "timezone", "start_date", "end_date", "offset_days", "anchor"}
    again = Schedule.from_dict(data)
    assert again == schedule
    assert again.upcoming(utc(2026, 1, 1), 5) == schedule.upcoming(utc(2026, 1, 1), 5)


def test_from_dict_validates_again() -> None:
    with pytest.raises(InvalidInput):
        Schedule.from_dict({"expression": "cron(0 25 * * *)", "timezone": "UTC"})


# ----------------------------------------------------------------------------------- performance


def test_a_year_of_hourly_runs() -> None:
    got = runs("cron(0 * * * *)", utc(2026, 1, 1), 24 * 365)
    assert got == [utc(2026, 1, 1, 1) + timedelta(hours=i) for i in range(24 * 365)]


@pytest.mark.parametrize("around", [utc(2026, 3, 7), utc(2026, 10, 31)])
def test_minutely_runs_across_a_dst_change_are_continuous(around: datetime) -> None:
    got = runs("cron(* * * * *)", around, 60 * 24 * 3, "America/New_York")
    # spring: 02:xx merges onto 03:xx (one run per instant); fall: 01:xx EST is not repeated (an hour without runs)
    gaps = Counter(b - a for a, b in zip(got, got[1:], strict=False))
    if around.month == 3:
        assert gaps == {timedelta(minutes=1): len(got) - 1}
    else:
        assert gaps == {timedelta(minutes=1): len(got) - 2, timedelta(minutes=61): 1}


def test_the_package_exports_what_it_names() -> None:
    import fleetops.controller.windows as windows

    assert all(hasattr(windows, name) for name in windows.__all__)
