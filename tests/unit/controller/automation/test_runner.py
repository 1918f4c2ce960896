"""Advancing a runbook execution from its rows (controller/automation/runner.py), through the store
(store.py) and the service (service.py): branches, end and abort, goto loops, waits, approvals,
cancels, resuming after a restart, and leases held by another replica. On a real SQLite database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from fleetops.common import documents
from fleetops.common.documents import Document
from fleetops.common.errors import Conflict, NotFound, PermissionDenied
from fleetops.controller.automation import context, models, runner
from fleetops.controller.automation.context import Services
from fleetops.controller.automation.models import (
    LEASE_SECONDS,
    Execution,
    ExecutionStatus,
    StepStatus,
    new_execution_id,
)
from fleetops.controller.automation.runner import ExecutionRunner
from fleetops.controller.automation.service import AutomationService
from fleetops.controller.automation.store import AutomationStore
from fleetops.controller.documents.models import DocumentInfo, sha256
from fleetops.controller.fleet.models import HostStatus, Target
from fleetops.controller.store import database
from fleetops.controller.store.models import AutomationExecutionRow

from events import stored_events

RUNBOOKS = {
    # params.env == prod -> prod, else -> staging; both end.
    "choose": """
parameters:
  env: {type: string}
steps:
  - name: decide
    branch:
      cases:
        - {when: "params.env == 'prod'", goto: prod}
      default: staging
  - name: staging
    branch:
      cases:
        - {when: "params.env == 'never'", goto: prod}
      default: end
  - name: prod
    branch:
      cases:
        - {when: "params.env == 'never'", goto: staging}
      default: end
""",
    "stop": """
steps:
  - name: check
    branch:
      cases:
        - {when: "params.go == 'no'", goto: abort}
      default: done
  - name: done
    wait: {duration: 1h}
parameters:
  go: {type: string}
""",
    "loop": """
steps:
  - name: ping
    branch:
      cases:
        - {when: "params.x == 'never'", goto: end}
      default: pong
  - name: pong
    branch:
      cases:
        - {when: "params.x == 'never'", goto: end}
      default: ping
parameters:
  x: {type: string, default: a}
""",
    "soak": """
steps:
  - name: soak
    wait: {duration: 1s}
""",
    "long-soak": """
steps:
  - name: soak
    wait: {duration: 1h}
""",
    "online": """
steps:
  - name: hosts-back
    wait: {until: hosts_online, target: "role=web", timeout: 1h}
""",
    "release": """
steps:
  - name: sign-off
    approve:
      approvers: [alice]
      timeout: 1h
      message: "ship {{ params.version }}?"
parameters:
  version: {type: string, default: "1.2"}
""",
    "two-approvals": """
steps:
  - name: sign-off
    approve: {approvers: [alice, bob], min_approvals: 2, timeout: 1h}
""",
    "quick-approval": """
steps:
  - name: sign-off
    approve: {approvers: [alice], timeout: 1s}
""",
    # one waits an hour: resuming must never run it again; two reads one's outputs.
    "three": """
steps:
  - name: one
    wait: {duration: 1h}
  - name: two
    branch:
      cases:
        - {when: "steps.one.status == 'success'", goto: three}
      default: abort
  - name: three
    branch:
      cases:
        - {when: "steps.two.status == 'nope'", goto: abort}
      default: end
""",
}


class FakeDocuments:
    """DocumentService.resolve over RUNBOOKS (each at version 1)."""

    async def resolve(self, reference: str) -> tuple[DocumentInfo, Document]:
        name, _ = documents.split_reference(reference)
        if name not in RUNBOOKS:
            raise NotFound(f"no document {name!r}")
        text = RUNBOOKS[name]
        doc = documents.parse(text)
        info = DocumentInfo(
            name=name,
            version=1,
            content=text,
            kind=doc.kind,
            description=doc.description,
            builtin=False,
            default_version=1,
            latest_version=1,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            created_by="alice",
            sha256=sha256(text),
        )
        return info, doc


@dataclass
class FakeHost:
    name: str
    status: HostStatus


@dataclass
class FakeFleet:
    hosts: list[FakeHost] = field(default_factory=list)
    asked: list[Target] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)

    async def resolve_target(self, target: Target) -> list[FakeHost]:
        self.asked.append(target)
        self.called.set()
        return list(self.hosts)


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._seen: dict[str, asyncio.Event] = {}

    def _event(self, action: str) -> asyncio.Event:
        return self._seen.setdefault(action, asyncio.Event())

    async def record(self, **kwargs: Any) -> None:
        self.events.append(kwargs)
        self._event(kwargs["action"]).set()

    async def seen(self, action: str) -> None:
        await asyncio.wait_for(self._event(action).wait(), 5)


@dataclass
class Env:
    db: Any
    store: AutomationStore
    services: Services
    service: AutomationService
    fleet: FakeFleet
    audit: FakeAudit
    docs: FakeDocuments

    async def create(
        self, runbook: str, parameters: dict[str, str] | None = None, *, owner: str = "r1", lease: float = LEASE_SECONDS
    ) -> Execution:
        """An execution of *runbook* held by *owner*, as the service creates one (not advanced yet)."""
        _, doc = await self.docs.resolve(runbook)
        return await self.store.create(
            new_execution_id(),
            f"{runbook}:1",
            parameters or {},
            doc.steps[0].name,
            "carol",
            "cli",
            "",
            owner,
            lease,
        )

    async def advance(self, execution_id: str, *, owner: str = "r1", timeout: float = 5) -> Execution:
        """Run a runner for the execution until it returns; the execution then."""
        await asyncio.wait_for(ExecutionRunner(self.services, execution_id, owner).run(), timeout)
        return await self.store.get(execution_id)

    async def start(self, runbook: str, parameters: dict[str, str] | None = None) -> tuple[str, asyncio.Task[None]]:
        """Start *runbook* through the service; the execution's id and the task advancing it."""
        info, shown = await self.service.resolve_runbook(runbook, parameters or {})
        execution = await self.service.start_execution("carol", info, shown)
        task = next(t for t in asyncio.all_tasks() if t.get_name() == f"automation-{execution.id}")
        return execution.id, task


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'automation.db'}")
    await database.ensure_schema(engine, migrate=True)
    db = database.session_factory(engine)
    fleet, audit, docs = FakeFleet(), FakeAudit(), FakeDocuments()
    service = AutomationService(
        db,
        fleet,  # type: ignore[arg-type]  # a fake FleetService (resolve_target only)
        None,  # type: ignore[arg-type]  # no run steps: no commands
        None,  # type: ignore[arg-type]  # no run steps: no patching
        docs,  # type: ignore[arg-type]  # a fake DocumentService (resolve only)
        None,  # type: ignore[arg-type]  # no run steps: nothing acts on hosts
        audit,  # type: ignore[arg-type]  # a fake AuditLog (record only)
        "r1",
    )
    store = AutomationStore(db)
    services = Services(store, fleet, None, None, docs, None, audit)  # type: ignore[arg-type]  # fakes, as above
    yield Env(db, store, services, service, fleet, audit, docs)
    await service.stop()
    await engine.dispose()


def names(execution: Execution) -> list[str]:
    return [s.name for s in execution.steps]


async def finished(task: asyncio.Task[None], timeout: float = 5) -> None:
    await asyncio.wait_for(task, timeout)


def observe(obj: Any, method: str, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set each time *obj*.*method* (a coroutine method) has returned."""
    called = asyncio.Event()
    original: Callable[..., Awaitable[Any]] = getattr(obj, method)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        called.set()
        return result

    monkeypatch.setattr(obj, method, wrapper)
    return called


# -- branch, end, abort ---------------------------------------------------------------------------


@pytest.mark.parametrize(("env_name", "path"), [("prod", ["decide", "prod"]), ("staging", ["decide", "staging"])])
async def test_a_branch_goes_to_its_true_case_else_to_its_default_and_end_succeeds(
    env: Env, env_name: str, path: list[str]
) -> None:
    execution = await env.create("choose", {"env": env_name})

    done = await env.advance(execution.id)

    assert done.status is ExecutionStatus.SUCCESS
    assert done.reason == ""
    assert done.finished_at is not None
    assert names(done) == path
    assert [s.status for s in done.steps] == [StepStatus.SUCCESS, StepStatus.SUCCESS]
    assert all(s.finished_at is not None for s in done.steps)
    assert done.current_step == ""
    assert done.outputs == {name: {"status": "success"} for name in path}


async def test_a_branch_to_abort_fails_the_execution_naming_the_step(env: Env) -> None:
    execution = await env.create("stop", {"go": "no"})

    done = await env.advance(execution.id)

    assert done.status is ExecutionStatus.FAILED
    assert "check" in done.reason
    assert "abort" in done.reason
    assert names(done) == ["check"]  # the one-hour wait after it never starts


# -- goto loops -----------------------------------------------------------------------------------


async def test_a_goto_loop_ends_failed_after_max_step_runs(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "MAX_STEP_RUNS", 7)
    execution = await env.create("loop")

    done = await env.advance(execution.id)

    assert done.status is ExecutionStatus.FAILED
    assert "loop" in done.reason
    assert "7" in done.reason
    assert names(done) == ["ping", "pong", "ping", "pong", "ping", "pong", "ping"]
    assert [s.seq for s in done.steps] == list(range(7))
    assert done.steps_run == 7


# -- wait -----------------------------------------------------------------------------------------


async def test_a_wait_lasts_its_duration_and_keeps_its_deadline_in_the_step_row(env: Env) -> None:
    execution = await env.create("soak")

    began = time.monotonic()
    done = await env.advance(execution.id)
    elapsed = time.monotonic() - began

    assert done.status is ExecutionStatus.SUCCESS
    assert 0.99 <= elapsed < 3
    (step,) = done.steps
    assert step.status is StepStatus.SUCCESS
    assert step.detail == "waited"
    deadline = datetime.fromisoformat(step.state["deadline"])
    assert step.deadline == deadline
    assert timedelta(seconds=0.9) <= deadline - step.started_at <= timedelta(seconds=1.5)
    assert step.finished_at is not None and step.finished_at >= deadline


async def test_a_wait_resumed_after_its_deadline_ends_at_once_instead_of_starting_over(env: Env) -> None:
    execution = await env.create("long-soak")  # one hour, from when it started
    started = datetime.now(UTC) - timedelta(hours=2)
    deadline = started + timedelta(hours=1)
    await env.store.start_step(execution.id, 0, "soak", "wait", {"deadline": deadline.isoformat()})

    began = time.monotonic()
    done = await env.advance(execution.id, timeout=3)

    assert time.monotonic() - began < 1
    assert done.status is ExecutionStatus.SUCCESS
    (step,) = done.steps  # the same row, not a new run of the step
    assert step.seq == 0
    assert step.status is StepStatus.SUCCESS
    assert step.state["deadline"] == deadline.isoformat()


async def test_a_wait_until_hosts_online_waits_for_every_host_of_its_target(env: Env) -> None:
    env.fleet.hosts = [FakeHost("web-1", HostStatus.ONLINE), FakeHost("web-2", HostStatus.ONLINE)]
    execution = await env.create("online")

    done = await env.advance(execution.id)

    assert done.status is ExecutionStatus.SUCCESS
    assert env.fleet.asked == [Target(selector="role=web")]
    assert done.steps[0].detail == "2 host(s) online"


# -- approvals ------------------------------------------------------------------------------------


async def test_an_approval_waits_for_its_approver_and_passes_with_their_name(env: Env) -> None:
    execution_id, task = await env.start("release")
    await env.audit.seen("automation.approval.wait")

    waiting = await env.service.get(execution_id)
    assert waiting.status is ExecutionStatus.WAITING_APPROVAL
    assert waiting.steps[-1].status is StepStatus.WAITING
    assert await env.service.approvers(waiting) == ("alice", "ship 1.2?")

    with pytest.raises(PermissionDenied) as denied:
        await env.service.decide(execution_id, "bob", [], True, "")
    assert "bob" in denied.value.message
    assert "alice" in denied.value.hint
    assert (await env.store.approvals(execution_id, 0)) == []

    _, step = await env.service.decide(execution_id, "alice", [], True, "looks good")
    assert step == "sign-off"
    await finished(task)

    done = await env.service.get(execution_id)
    assert done.status is ExecutionStatus.SUCCESS
    assert done.outputs["sign-off"] == {"status": "success", "approved_by": "alice"}
    assert done.steps[-1].detail == "approved by alice"

    with pytest.raises(Conflict):  # it waits on no approval any more
        await env.service.decide(execution_id, "alice", [], True, "")


async def test_a_denial_fails_the_execution_with_who_denied_it_and_why(env: Env) -> None:
    execution_id, task = await env.start("release")
    await env.audit.seen("automation.approval.wait")

    await env.service.decide(execution_id, "alice", [], False, "not on a Friday")
    await finished(task)

    done = await env.service.get(execution_id)
    assert done.status is ExecutionStatus.FAILED
    assert "denied by alice: not on a Friday" in done.reason
    assert "sign-off" in done.reason
    assert done.steps[-1].status is StepStatus.FAILED
    assert done.steps[-1].detail == "denied by alice: not on a Friday"


async def test_an_approval_without_an_answer_in_time_fails(env: Env) -> None:
    began = time.monotonic()
    execution_id, task = await env.start("quick-approval")
    await finished(task)

    assert time.monotonic() - began >= 0.99
    done = await env.service.get(execution_id)
    assert done.status is ExecutionStatus.FAILED
    assert "no approval in time" in done.reason
    assert done.steps[-1].status is StepStatus.FAILED
    with pytest.raises(Conflict):
        await env.service.decide(execution_id, "alice", [], True, "too late")


async def test_an_approver_answers_once(env: Env) -> None:
    execution_id, task = await env.start("two-approvals")
    await env.audit.seen("automation.approval.wait")

    await env.service.decide(execution_id, "alice", [], True, "")
    with pytest.raises(Conflict) as twice:
        await env.service.decide(execution_id, "alice", [], True, "")
    assert "already answered" in twice.value.message
    assert not task.done()

    await env.service.decide(execution_id, "bob", [], True, "")
    await finished(task)
    done = await env.service.get(execution_id)
    assert done.status is ExecutionStatus.SUCCESS
    assert done.outputs["sign-off"]["approved_by"] == "alice,bob"


async def test_deciding_on_an_execution_that_waits_on_no_approval_is_a_conflict(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_saved = observe(env.service.store, "save_step", monkeypatch)
    execution_id, task = await env.start("long-soak")
    await asyncio.wait_for(step_saved.wait(), 5)

    with pytest.raises(Conflict) as error:
        await env.service.decide(execution_id, "alice", [], True, "")
    assert "waiting for no approval" in error.value.message

    await env.service.cancel(execution_id)
    await finished(task)


# -- cancel ---------------------------------------------------------------------------------------


async def test_a_cancel_during_a_wait_ends_the_execution_and_its_step_cancelled(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_saved = observe(env.service.store, "save_step", monkeypatch)
    execution_id, task = await env.start("long-soak")
    await asyncio.wait_for(step_saved.wait(), 5)

    began = time.monotonic()
    await env.service.cancel(execution_id)
    await finished(task, 3)

    assert time.monotonic() - began < 1.5
    done = await env.service.get(execution_id)
    assert done.status is ExecutionStatus.CANCELLED
    assert "soak" in done.reason
    assert done.steps[-1].status is StepStatus.CANCELLED
    assert done.finished_at is not None
    with pytest.raises(Conflict):  # nothing left to cancel
        await env.service.cancel(execution_id)


async def test_a_cancel_during_a_wait_for_hosts_ends_it_cancelled(env: Env) -> None:
    env.fleet.hosts = [FakeHost("web-1", HostStatus.OFFLINE)]
    execution_id, task = await env.start("online")
    await asyncio.wait_for(env.fleet.called.wait(), 5)

    await env.service.cancel(execution_id)
    await finished(task, 3)

    done = await env.service.get(execution_id)
    assert done.status is ExecutionStatus.CANCELLED
    assert done.steps[-1].status is StepStatus.CANCELLED


# -- resume ---------------------------------------------------------------------------------------


async def test_a_resumed_execution_continues_at_its_current_step_without_repeating_the_last(env: Env) -> None:
    execution = await env.create("three")
    await env.store.start_step(execution.id, 0, "one", "wait", {})
    await env.store.end_step(execution.id, 0, StepStatus.SUCCESS, "waited", {"status": "success"}, "two")

    done = await env.advance(execution.id, timeout=3)  # running "one" again would wait an hour

    assert done.status is ExecutionStatus.SUCCESS
    assert names(done) == ["one", "two", "three"]
    assert names(done).count("one") == 1
    assert [s.seq for s in done.steps] == [0, 1, 2]
    assert done.steps_run == 3


# -- leases ---------------------------------------------------------------------------------------


async def test_another_replicas_valid_lease_keeps_the_execution_from_this_one(env: Env) -> None:
    execution = await env.create("choose", {"env": "prod"}, owner="A")

    assert execution.id not in await env.store.claim("B", LEASE_SECONDS)
    assert execution.id in await env.store.claim("A", LEASE_SECONDS)  # its holder keeps it
    assert not await env.store.renew(execution.id, "B", LEASE_SECONDS)

    untouched = await env.advance(execution.id, owner="B")
    assert untouched.status is ExecutionStatus.IN_PROGRESS
    assert untouched.steps == ()
    assert untouched.steps_run == 0
    assert untouched.owner == "A"

    # A's lease lapses (A stopped renewing): B takes the execution, and A no longer advances it.
    async with env.db.begin() as db:
        await db.execute(
            update(AutomationExecutionRow)
            .where(AutomationExecutionRow.id == execution.id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await env.store.claim("B", LEASE_SECONDS) == [execution.id]
    assert (await env.store.get(execution.id)).owner == "B"
    assert not await env.store.renew(execution.id, "A", LEASE_SECONDS)
    assert (await env.advance(execution.id, owner="A")).steps == ()

    done = await env.advance(execution.id, owner="B")
    assert done.status is ExecutionStatus.SUCCESS
    assert names(done) == ["decide", "prod"]


async def test_a_runner_keeps_its_lease_while_a_long_step_runs(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait or an approval may last far longer than a lease: the replica advancing it must not
    lose it to another replica meanwhile (here: a lease of 0.3 s, a step of 1 s, polls every 0.1 s)."""
    for module in (models, runner, context):
        monkeypatch.setattr(module, "LEASE_SECONDS", 0.3, raising=False)
    monkeypatch.setattr(context, "POLL_SECONDS", 0.1)
    step_saved = observe(env.store, "save_step", monkeypatch)
    execution = await env.create("soak", owner="A", lease=0.3)
    task = asyncio.create_task(ExecutionRunner(env.services, execution.id, "A").run())
    try:
        await asyncio.wait_for(step_saved.wait(), 5)
        await asyncio.sleep(0.6)  # twice the lease, while the one-second wait runs

        taken = await env.store.claim("B", LEASE_SECONDS)
        assert taken == [], "replica B took over an execution replica A is advancing"
    finally:
        await finished(task)


async def test_waiting_for_an_approval_writes_its_event_once(env: Env) -> None:
    execution_id, task = await env.start("two-approvals")
    await env.audit.seen("automation.approval.wait")
    # The step saved again as waiting (a runner resuming it on another replica): no second event.
    await env.store.save_step(
        execution_id, 0, execution_status=ExecutionStatus.WAITING_APPROVAL, approval={"approvers": ["x"]}
    )
    (event,) = await stored_events(env.db.kw["bind"], "fleetops.automation.")
    assert event.type == "fleetops.automation.approval_waiting"
    assert event.subject == f"automation/{execution_id}" and event.host is None
    deadline = event.data.pop("deadline")
    assert datetime.fromisoformat(deadline) > datetime.now(UTC)
    assert event.data == {
        "execution_id": execution_id,
        "runbook": "two-approvals:1",
        "step": "sign-off",
        "seq": 0,
        "approvers": ["alice", "bob"],
        "role": "",
        "min_approvals": 2,
    }
    await env.service.decide(execution_id, "alice", [], False, "no")
    await finished(task)
    assert len(await stored_events(env.db.kw["bind"], "fleetops.automation.")) == 1
