"""The associations room's pure rules: names, schedules, matching, what a result makes of a host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.states import InvocationState
from fleetops.controller.associations.models import (
    HostResult,
    Status,
    application_outcome,
    check_interval,
    check_outcome,
    chunks,
    first_line,
    is_id,
    matching,
    new_association_id,
    parse_schedule,
    summary,
    validate_name,
)
from fleetops.controller.fleet.models import Host, HostStatus, Target

T0 = datetime(2026, 3, 28, 10, 7, tzinfo=UTC)


def host(
    name: str, inventory: dict[str, object] | None = None, host_tags: dict[str, str] | None = None, **tags: str
) -> Host:
    return Host(
        f"id-{name}", name, HostStatus.ONLINE, dict(tags), dict(inventory or {}), "", T0, None, None, None,
        host_tags=dict(host_tags or {}),
    )  # fmt: skip


def result(state: InvocationState, exit_code: int | None = None, reason: str = "", output: bytes = b"") -> HostResult:
    return HostResult("id-h", state, exit_code, reason, T0, output)


def test_names_are_optional_and_never_look_like_ids() -> None:
    assert validate_name("") == "" and validate_name("web-nginx.v2") == "web-nginx.v2"
    assert is_id(new_association_id()) and not is_id("web-nginx")
    for bad in ("-web", "web nginx", "x" * 129, "web/nginx"):
        with pytest.raises(InvalidInput, match="bad association name"):
            validate_name(bad)
    with pytest.raises(InvalidInput, match="starts with assoc-") as info:
        validate_name("assoc-web")
    assert "ids" in info.value.hint


def test_rate_schedules_count_from_the_creation_and_at_is_refused() -> None:
    schedule = parse_schedule("rate(30 minutes)", T0)
    assert schedule.next_after(T0 - timedelta(microseconds=1)) == T0  # the first application: the creation
    assert schedule.next_after(T0 + timedelta(seconds=1)) == T0 + timedelta(minutes=30)
    assert parse_schedule("rate(1 minute)", T0).expression == "rate(1 minute)"
    nightly = parse_schedule("cron(0 3 * * *)", T0)
    assert nightly.next_after(T0) == datetime(2026, 3, 29, 3, 0, tzinfo=UTC)  # cron is in UTC
    with pytest.raises(InvalidInput, match="would apply it once") as info:
        parse_schedule("at(2030-01-01T02:00)", T0)
    assert "rate(...) or cron(...)" in info.value.hint
    with pytest.raises(InvalidInput, match="no schedule given"):
        parse_schedule("  ", T0)
    with pytest.raises(InvalidInput) as info:
        parse_schedule("every hour", T0)
    assert "at(" not in info.value.hint  # the windows' hint offers at(); associations refuse it
    with pytest.raises(InvalidInput, match="bad rate expression"):
        parse_schedule("rate(0.5 minutes)", T0)
    with pytest.raises(InvalidInput, match="longer than 255 characters"):
        parse_schedule("rate(" + "1" * 300 + " minutes)", T0)


def test_check_intervals() -> None:
    assert check_interval(0) == 0 and check_interval(5) == 5 and check_interval(7 * 86400) == 7 * 86400
    for bad in (1, 4, 7 * 86400 + 1):
        with pytest.raises(InvalidInput, match="out of range"):
            check_interval(bad)


def test_the_summary_puts_failures_first_then_drift_then_waiting() -> None:
    assert summary({}) == "pending"
    assert summary({"compliant": 3}) == "compliant"
    assert summary({"compliant": 3, "pending": 1}) == "pending"
    assert summary({"compliant": 3, "drifted": 1, "pending": 1}) == "drifted"
    assert summary({"compliant": 3, "drifted": 1, "failed": 1}) == "non_compliant"
    assert summary({"non_compliant": 1, "compliant": 0}) == "non_compliant"
    assert summary({"compliant": 0}) == "pending"


def test_matching_sees_every_tag_and_the_inventory_and_tolerates_missing_named_hosts() -> None:
    web = host("web-1", {"os_family": "linux"}, role="web")
    own = host("web-2", {"os_family": "windows"}, host_tags={"role": "web"})
    db = host("db-1", role="db")
    hosts = [web, own, db]
    assert matching(Target(selector="role=web"), hosts) == [web, own]
    assert matching(Target(selector="role=web,inv.os_family=linux"), hosts) == [web]
    assert matching(Target(all=True), hosts) == hosts
    assert matching(Target(hosts=("db-1", "gone", "id-web-1", "web-1")), hosts) == [db, web]
    assert matching(Target(), hosts) == []


def test_an_application_result_makes_the_host_compliant_non_compliant_or_failed() -> None:
    assert application_outcome(result(InvocationState.SUCCESS, 0)) == (Status.COMPLIANT, "")
    assert application_outcome(result(InvocationState.FAILED, 3, "exit status 3")) == (
        Status.NON_COMPLIANT,
        "exit code 3: exit status 3",
    )
    assert application_outcome(result(InvocationState.FAILED, 2)) == (Status.NON_COMPLIANT, "exit code 2")
    assert application_outcome(result(InvocationState.TIMED_OUT)) == (Status.NON_COMPLIANT, "timed out")
    assert application_outcome(result(InvocationState.UNDELIVERABLE, reason="host offline")) == (
        Status.FAILED,
        "not delivered: host offline",
    )
    assert application_outcome(result(InvocationState.NOT_STARTED))[0] is Status.FAILED
    long = application_outcome(result(InvocationState.FAILED, 1, "x\n" * 1000))[1]
    assert len(long) <= 500 and "\n" not in long


def test_a_check_result_keeps_the_host_compliant_or_makes_it_drifted() -> None:
    assert check_outcome(result(InvocationState.SUCCESS, 0)) == (Status.COMPLIANT, "")
    assert check_outcome(result(InvocationState.FAILED, 1, output=b"\n  \nmarker missing\nmore\n")) == (
        Status.DRIFTED,
        "marker missing",
    )
    assert check_outcome(result(InvocationState.FAILED, 4)) == (Status.DRIFTED, "the check exited 4")
    assert check_outcome(result(InvocationState.TIMED_OUT)) == (Status.DRIFTED, "the check timed out")
    for state in (InvocationState.UNDELIVERABLE, InvocationState.CANCELLED, InvocationState.NOT_STARTED):
        assert check_outcome(result(state)) is None  # the check did not run there: nothing learnt


def test_first_line_and_chunks() -> None:
    assert first_line(b"\xff\xfebad\n") == "\ufffd\ufffdbad"
    assert first_line(b"") == ""
    assert list(chunks(["a", "b", "c"], 2)) == [["a", "b"], ["c"]]
    assert list(chunks([], 2)) == []
