"""What the associations room hands out, and the pure rules behind it (docs/automation.md#associations).

An :class:`Association` keeps a document applied to a target on a schedule. Each host it matches
has a :class:`HostCompliance`: ``pending`` while an application is on its way, ``compliant`` or
``non_compliant`` after one (its command's result), ``drifted`` when the document's check failed
since, ``failed`` when the application could not be made there (outside the author's rights, no
script for its platform, not delivered). Every application and check is an
:class:`AssociationRun`: the command it made and why (its trigger).

The functions here decide without I/O: which hosts a target matches (:func:`matching`), what a
result means for a host (:func:`application_outcome`, :func:`check_outcome`), the summary of an
association (:func:`summary`), and which schedules are accepted (:func:`parse_schedule`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from fleetops.common.errors import InvalidInput
from fleetops.common.selectors import Selector, inventory_facts
from fleetops.common.states import InvocationState
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.windows.schedule import SCHEDULE_HINT as WINDOW_SCHEDULE_HINT
from fleetops.controller.windows.schedule import Schedule, ScheduleKind

ID_PREFIX = "assoc-"
NAME_HINT = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. web-nginx"
SCHEDULE_HINT = "use rate(30 minutes), rate(1 day) or cron(0 2 * * *) (in UTC)"
#: The shortest ``--check-every``: a check is a command on every compliant host.
MIN_CHECK_SECONDS = 5
#: The longest ``--check-every`` (a week).
MAX_CHECK_SECONDS = 7 * 86400
#: The longest schedule expression stored.
MAX_SCHEDULE = 255
#: Detail texts kept per host (a check's first line, a reason), in characters.
MAX_DETAIL = 500

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Status(StrEnum):
    """One host's compliance with one association."""

    PENDING = "pending"  # matched, no result yet (an application is on its way)
    COMPLIANT = "compliant"  # the last application succeeded, and the last check (if any) passed
    NON_COMPLIANT = "non_compliant"  # the last application ran and failed (exit code, timeout)
    DRIFTED = "drifted"  # applied, but the document's check has failed since
    FAILED = "failed"  # the application could not be made there (rights, platform, delivery)


#: Statuses a check looks at: the hosts where the document was applied successfully.
CHECKED = (Status.COMPLIANT, Status.DRIFTED)


class Trigger(StrEnum):
    """Why a run happened."""

    SCHEDULE = "schedule"  # an occurrence of the schedule (the first one at creation)
    NEW_HOST = "new-host"  # hosts that newly match the target (registered, or retagged into it)
    MANUAL = "manual"  # opsctl association apply
    CHECK = "check"  # the document's check, between applications


def new_association_id() -> str:
    return ID_PREFIX + secrets.token_hex(8)


def validate_name(name: str) -> str:
    """*name* if it may name an association, else :class:`InvalidInput` (``""``: no name)."""
    if not name:
        return name
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"bad association name {name[:140]!r}", NAME_HINT)
    if name.startswith(ID_PREFIX):
        raise InvalidInput(
            f"association name {name!r} starts with {ID_PREFIX}", f"names starting {ID_PREFIX} are ids; {NAME_HINT}"
        )
    return name


def is_id(key: str) -> bool:
    return key.startswith(ID_PREFIX)


def parse_schedule(expression: str, anchor: datetime) -> Schedule:
    """The schedule of an association created at *anchor*: ``rate()`` or ``cron()`` (in UTC).

    A ``rate()`` schedule's occurrences count from *anchor* (the creation), which is also the
    first application. ``at()`` (once) is refused: an association keeps a state, it does not run
    once.

    Raises:
        InvalidInput: a malformed expression, or ``at()``.
    """
    if not expression.strip():
        raise InvalidInput("no schedule given", SCHEDULE_HINT)
    if len(expression) > MAX_SCHEDULE:
        raise InvalidInput(f"the schedule is longer than {MAX_SCHEDULE} characters", SCHEDULE_HINT)
    try:
        schedule = Schedule.parse(expression, "UTC", anchor=anchor)
    except InvalidInput as exc:
        # The windows' generic hint offers at(), which associations refuse.
        raise InvalidInput(exc.message, SCHEDULE_HINT if exc.hint == WINDOW_SCHEDULE_HINT else exc.hint) from None
    if schedule.kind is ScheduleKind.AT:
        raise InvalidInput(
            f"an association keeps a document applied; {schedule.expression} would apply it once",
            "run it once with opsctl run --doc, or give a rate(...) or cron(...) schedule",
        )
    return schedule


def check_interval(seconds: int) -> int:
    """``--check-every`` in seconds, checked (0: no checks).

    Raises:
        InvalidInput: shorter than :data:`MIN_CHECK_SECONDS` or longer than a week.
    """
    if seconds == 0:
        return 0
    if not MIN_CHECK_SECONDS <= seconds <= MAX_CHECK_SECONDS:
        raise InvalidInput(
            f"--check-every {seconds}s is out of range",
            f"from {MIN_CHECK_SECONDS}s to 7d, or leave it out for no checks",
        )
    return seconds


@dataclass(frozen=True)
class Association:
    """A document kept applied to a target. ``parameters`` are as given (text), checked against
    the document at creation and again at each application; ``document`` is ``NAME`` (the default
    version when it applies) or ``NAME:VERSION``."""

    id: str
    name: str
    document: str
    parameters: dict[str, str]
    target: Target
    schedule: str
    max_concurrency: str
    max_errors: str
    check_interval_seconds: int
    author: str
    created_at: datetime
    next_run_at: datetime
    last_run_at: datetime | None = None
    next_check_at: datetime | None = None
    #: Hosts per status (filled by listings and shows).
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return summary(self.counts)

    @property
    def label(self) -> str:
        """How messages name it: ``assoc-… (NAME)``."""
        return f"{self.id} ({self.name})" if self.name else self.id


@dataclass(frozen=True)
class HostCompliance:
    """One host's compliance with one association."""

    association_id: str
    host_id: str
    status: Status
    detail: str
    last_applied_at: datetime | None
    last_command_id: str
    last_check_at: datetime | None
    updated_at: datetime
    host_name: str = ""


@dataclass(frozen=True)
class AssociationRun:
    """One application (or check) of an association: the command it made."""

    association_id: str
    command_id: str
    trigger: Trigger
    started_at: datetime
    hosts: int
    recorded: bool = False
    #: The command's status (filled by the history).
    status: str = ""


@dataclass(frozen=True)
class HostResult:
    """What a host's part of a run said, as the result listener or the catch-up reads it."""

    host_id: str
    state: InvocationState
    exit_code: int | None
    reason: str
    at: datetime
    output: bytes = b""  # the start of the output (a failed check's first line)


def summary(counts: Mapping[str, int]) -> str:
    """An association's status from its hosts' (``counts``: hosts per status).

    ``non_compliant`` when any host is non-compliant or failed, else ``drifted`` when any drifted,
    else ``pending`` when any (or no host at all) waits, else ``compliant``.
    """
    has = {status for status, n in counts.items() if n}
    if has & {Status.NON_COMPLIANT, Status.FAILED}:
        return Status.NON_COMPLIANT.value
    if Status.DRIFTED in has:
        return Status.DRIFTED.value
    if not has or Status.PENDING in has:
        return Status.PENDING.value
    return Status.COMPLIANT.value


def matching(target: Target, hosts: Sequence[Host]) -> list[Host]:
    """The hosts of *hosts* (the registered ones) that *target* matches now, in order.

    As targeting does (``FleetService.resolve_target``): a selector sees every tag and the
    inventory facts; named hosts match by name or id. Unlike a direct call, a named host that does
    not exist (any more) is no error: it matches nothing until a host of that name registers.

    Raises:
        InvalidInput: a malformed selector (it was checked at creation: only a bug gets here).
    """
    if target.all:
        return list(hosts)
    if target.hosts:
        by_key = {h.name: h for h in hosts} | {h.id: h for h in hosts}
        seen: dict[str, Host] = {}
        for key in target.hosts:
            host = by_key.get(key)
            if host is not None:
                seen.setdefault(host.id, host)
        return list(seen.values())
    if not target.selector:
        return []
    selector = Selector.parse(target.selector)
    facts = bool(selector.fact_keys)
    return [h for h in hosts if selector.matches(h.all_tags, inventory_facts(h.inventory) if facts else None)]


def _detail(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def application_outcome(result: HostResult) -> tuple[Status, str]:
    """What an application's final result makes of the host: its status and why."""
    reason = result.reason.strip()
    if result.state is InvocationState.SUCCESS:
        return Status.COMPLIANT, ""
    if result.state is InvocationState.FAILED:
        status, what = (
            Status.NON_COMPLIANT,
            f"exit code {result.exit_code}" if result.exit_code is not None else "failed",
        )
    elif result.state is InvocationState.TIMED_OUT:
        status, what = Status.NON_COMPLIANT, "timed out"
    else:
        status = Status.FAILED
        what = {
            InvocationState.UNDELIVERABLE: "not delivered",
            InvocationState.CANCELLED: "cancelled",
            InvocationState.NOT_STARTED: "not started",
        }.get(result.state, result.state.value)
    return status, _detail(f"{what}: {reason}" if reason else what)


def execution_outcome(execution_id: str, status: str, reason: str) -> tuple[Status, str]:
    """What a runbook's execution that ended (*status*: success, failed or cancelled) makes of
    each host it was started for: the runbook acts on its target as a whole, so its hosts share
    its outcome."""
    if status == "success":
        return Status.COMPLIANT, ""
    reason = reason.strip()
    what = f"runbook execution {execution_id} {status}"
    return Status.NON_COMPLIANT, _detail(f"{what}: {reason}" if reason else what)


def first_line(output: bytes) -> str:
    """The first non-empty line of *output* (decoded leniently), shortened."""
    for line in output.decode("utf-8", "replace").splitlines():
        if line.strip():
            return _detail(line)
    return ""


def check_outcome(result: HostResult) -> tuple[Status, str] | None:
    """What a check's final result makes of an applied host; ``None``: no change (not run there).

    Exit 0 keeps (or makes again) the host compliant; any other exit, or a timeout, makes it
    ``drifted``, with the check's first line of output (else its exit code) as the detail.
    """
    if result.state is InvocationState.SUCCESS:
        return Status.COMPLIANT, ""
    if result.state is InvocationState.FAILED:
        line = first_line(result.output)
        code = f"the check exited {result.exit_code}" if result.exit_code is not None else "the check failed"
        return Status.DRIFTED, line or code
    if result.state is InvocationState.TIMED_OUT:
        return Status.DRIFTED, "the check timed out"
    return None


def chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    """*items* in lists of at most *size* (one command each)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
