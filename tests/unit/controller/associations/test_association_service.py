"""The association loop over a real (SQLite) store, with fake commands, hosts, documents and authors.

Commands "run" until a test reports their results (through the listener, as CommandService does,
or only in the fake's store, as after a controller stopped between the commit and the listener).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fleetops.common import documents
from fleetops.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from fleetops.common.roles import Role, role_from_text
from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.associations.service import AssociationService
from fleetops.controller.commands.models import CommandSpec, InvocationReport
from fleetops.controller.documents.models import DocumentInfo
from fleetops.controller.fleet.models import Host, HostStatus, Target
from fleetops.controller.store import database

T0 = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)
KEEP = """
description: keep a file
parameters: {line: {type: string, default: hi}}
run: {shell: 'echo "$FLEETOPS_PARAM_LINE" > /tmp/x'}
check: {shell: 'grep -q hi /tmp/x'}
"""
ROLL = """
description: roll the line out over a target
parameters:
  target: {type: string}
  line: {type: string, default: hi}
steps:
  - name: apply
    run: {document: keep, target: "{{ params.target }}", parameters: {line: "{{ params.line }}"}}
"""
NO_TARGET = """
description: a runbook that cannot take an association's target
parameters: {line: {type: string, default: hi}}
steps:
  - name: apply
    run: {document: keep, target: role=web, parameters: {line: "{{ params.line }}"}}
"""
DOCUMENTS = {"keep": ("command", KEEP), "roll": ("runbook", ROLL), "fixed": ("runbook", NO_TARGET)}
ALL = "name: all\nallow:\n  - actions: [command.run]\n    logins: [root]\n"
WEB_ONLY = (
    "name: web\nallow:\n  - actions: [document.run]\n    hosts: role=web\n    documents: [keep]\n    logins: [root]\n"
)


def host(name: str, **tags: str) -> Host:
    return Host(f"id-{name}", name, HostStatus.ONLINE, dict(tags), {}, "", T0, None, None, None)


class FakeFleet:
    def __init__(self, *hosts: Host) -> None:
        self.hosts = list(hosts)

    async def list_hosts(self, target: Target, include_deregistered: bool = False) -> list[Host]:
        return list(self.hosts)

    async def resolve_target(self, target: Target) -> list[Host]:
        by_key = {h.name: h for h in self.hosts} | {h.id: h for h in self.hosts}
        missing = [k for k in target.hosts if k not in by_key]
        if missing:
            raise NotFound("no such host: " + ", ".join(missing))
        return [by_key[k] for k in target.hosts]


@dataclass
class FakeCommand:
    id: str
    actor: str
    hosts: list[str]
    spec: CommandSpec
    status: CommandStatus = CommandStatus.IN_PROGRESS
    invocations: list[Any] = field(default_factory=list)


class FakeCommands:
    def __init__(self, fleet: FakeFleet) -> None:
        self.fleet = fleet
        self.made: dict[str, FakeCommand] = {}
        self.listeners: list[Callable[[str, str, InvocationReport], Awaitable[None]]] = []

    def on_result(self, listener: Any, *, agent_tasks: Any = None) -> None:
        self.listeners.append(listener)

    async def create(self, actor: str, target: Target, spec: CommandSpec, *, authorize: Any, command_id: str) -> Any:
        hosts = await self.fleet.resolve_target(target)
        authorize(hosts)
        self.made[command_id] = FakeCommand(command_id, actor, [h.id for h in hosts], spec)
        return SimpleNamespace(id=command_id), hosts

    async def command(self, command_id: str) -> Any:
        if command_id not in self.made:
            raise NotFound(f"no such command: {command_id}")
        return self.made[command_id]

    async def view(self, command_id: str, *, tails: bool = True, only: Any = None) -> tuple[Any, list[Any]]:
        command = self.made[command_id]
        found = [i for i in command.invocations if only is None or i.id in only]
        return command, found

    async def finish(
        self, command_id: str, host_id: str, state: InvocationState, output: bytes = b"", *, tell: bool = True
    ) -> None:
        """A host's final result: stored, then (with *tell*) passed to the listeners."""
        command = self.made[command_id]
        code = 0 if state is InvocationState.SUCCESS else 1
        invocation = SimpleNamespace(
            id=f"inv-{host_id}", host_id=host_id, state=state, exit_code=code, reason="", finished_at=T0,
            updated_at=T0, stdout_tail=output, stderr_tail=b"",
        )  # fmt: skip
        command.invocations.append(invocation)
        if len(command.invocations) == len(command.hosts):
            command.status = CommandStatus.SUCCESS
        if tell:
            report = InvocationReport(f"inv-{host_id}", state, code, "", 0, 0, T0, T0)
            for listener in self.listeners:
                await listener(command_id, host_id, report)

    def of(self, trigger_comment: str) -> list[FakeCommand]:
        return [c for c in self.made.values() if c.spec.comment.endswith(trigger_comment)]


class FakeDocuments:
    async def resolve(self, reference: str) -> tuple[DocumentInfo, documents.Document]:
        name, _ = documents.split_reference(reference)
        if name not in DOCUMENTS:
            raise NotFound(f"no document {name!r}")
        kind, text = DOCUMENTS[name]
        info = DocumentInfo(name, 1, text, kind, "", False, 1, 1, T0, "operator:admin", "")
        return info, documents.parse(text)


@dataclass
class Started:
    author: str
    runbook: str
    parameters: dict[str, str]
    via: str
    status: str = "in_progress"
    reason: str = ""


class FakeRunbooks:
    """Executions "run" until a test ends them."""

    def __init__(self) -> None:
        self.started: dict[str, Started] = {}

    async def launch(
        self, author: str, runbook: str, parameters: dict[str, str], via: str, *, execution_id: str = ""
    ) -> str:
        self.started[execution_id] = Started(author, runbook, parameters, via)
        return execution_id

    async def outcome(self, execution_id: str) -> tuple[bool, str, str]:
        if execution_id not in self.started:
            raise NotFound(f"no automation execution {execution_id!r}")
        e = self.started[execution_id]
        return e.status != "in_progress", e.status, e.reason

    async def cancel_if_running(self, execution_id: str) -> None:
        raise AssertionError("associations never cancel")

    def end(self, execution_id: str, status: str, reason: str = "") -> None:
        self.started[execution_id].status, self.started[execution_id].reason = status, reason


class FakeActing:
    def __init__(self) -> None:
        self.roles: dict[str, list[Role]] = {"alice": [role_from_text(ALL, "all")]}
        self.disabled: set[str] = set()

    async def roles_of(self, author: str, hint: str) -> tuple[str, list[Role]]:
        name = author.removeprefix("operator:")
        if name in self.disabled:
            raise PermissionDenied(f"the author {name!r} is disabled", hint)
        return name, self.roles[name]


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def record(self, **event: Any) -> None:
        self.events.append(event)


@dataclass
class Env:
    service: AssociationService
    fleet: FakeFleet
    commands: FakeCommands
    acting: FakeActing
    audit: FakeAudit
    db: Any
    runbooks: FakeRunbooks


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    await database.ensure_schema(engine, migrate=True)
    db = database.session_factory(engine)
    fleet = FakeFleet(host("web-1", role="web"), host("web-2", role="web"), host("db-1", role="db"))
    commands, acting, audit = FakeCommands(fleet), FakeActing(), FakeAudit()
    runbooks = FakeRunbooks()
    service = make_service(db, fleet, commands, acting, audit, runbooks)
    yield Env(service, fleet, commands, acting, audit, db, runbooks)
    await engine.dispose()


def make_service(
    db: Any, fleet: FakeFleet, commands: FakeCommands, acting: FakeActing, audit: FakeAudit, runbooks: FakeRunbooks
) -> Any:
    service = AssociationService(db, fleet, commands, None, FakeDocuments(), acting, audit, "r1")  # type: ignore[arg-type]
    service.runbooks = runbooks
    commands.on_result(service._on_result)  # what start() does, without its loop: the tests call pass_once
    return service


async def create(
    env: Env, selector: str = "role=web", author: str = "alice", document: str = "keep", **options: Any
) -> str:
    new = await env.service.prepare(
        f"operator:{author}", name="", document=document, parameters=options.pop("parameters", {}),
        target=options.pop("target", Target(selector=selector)), schedule="rate(30 minutes)", **options,
    )  # fmt: skip
    return (await env.service.create(new)).id


async def statuses(env: Env, key: str) -> dict[str, str]:
    _, rows = await env.service.detail(key)
    return {r.host_name: f"{r.status.value}{': ' + r.detail if r.detail else ''}" for r in rows}


async def test_applied_at_creation_then_to_new_hosts_only_and_results_make_compliance(env: Env) -> None:
    key = await create(env)
    await env.service.pass_once()
    (first,) = env.commands.of(key)
    assert first.actor == f"operator:alice via association:{key}" and sorted(first.hosts) == ["id-web-1", "id-web-2"]
    assert first.spec.env == {"FLEETOPS_PARAM_LINE": "hi"} and first.spec.max_errors == "100%"
    assert await statuses(env, key) == {"web-1": "pending", "web-2": "pending"}
    await env.commands.finish(first.id, "id-web-1", InvocationState.SUCCESS)
    await env.commands.finish(first.id, "id-web-2", InvocationState.FAILED)
    assert await statuses(env, key) == {"web-1": "compliant", "web-2": "non_compliant: exit code 1"}

    await env.service.pass_once()  # nothing due, no new host: nothing made
    assert len(env.commands.made) == 1
    env.fleet.hosts.append(host("web-3", role="web"))
    await env.service.pass_once()
    (second,) = [c for c in env.commands.of(key) if c is not first]
    assert second.hosts == ["id-web-3"]
    history = [(r.trigger.value, r.hosts) for r in (await env.service.history(key, 10))[1]]
    assert history == [("new-host", 1), ("schedule", 2)]

    env.fleet.hosts = [h for h in env.fleet.hosts if h.name != "web-2"]  # gone from the target
    env.service._full_pass = datetime.min.replace(tzinfo=UTC)
    await env.service.pass_once()
    assert set(await statuses(env, key)) == {"web-1", "web-3"}


async def test_rates_are_stored_in_their_shortest_form(env: Env) -> None:
    key = await create(env, max_concurrency="050", max_errors=" 010% ")
    stored = await env.service.get(key)
    assert (stored.max_concurrency, stored.max_errors) == ("50", "10%")


async def test_a_result_missed_by_the_listener_is_recorded_by_the_next_start(env: Env) -> None:
    key = await create(env)
    await env.service.pass_once()
    (command,) = env.commands.made.values()
    await env.commands.finish(command.id, "id-web-1", InvocationState.SUCCESS)
    await env.commands.finish(command.id, "id-web-2", InvocationState.SUCCESS, tell=False)  # stopped before the call
    assert await statuses(env, key) == {"web-1": "compliant", "web-2": "pending"}
    restarted = make_service(env.db, env.fleet, env.commands, env.acting, env.audit, env.runbooks)
    await restarted.pass_once()
    assert await statuses(env, key) == {"web-1": "compliant", "web-2": "compliant"}
    assert await restarted.store.unrecorded() == []


async def test_each_application_is_decided_as_the_author_then(env: Env) -> None:
    env.acting.roles["bob"] = [role_from_text(WEB_ONLY, "web")]
    key = await create(env, selector="role in (web,db)", author="bob")
    await env.service.pass_once()
    (command,) = env.commands.made.values()
    assert sorted(command.hosts) == ["id-web-1", "id-web-2"]  # db-1 is outside bob's rights: left out
    shown = await statuses(env, key)
    assert shown["db-1"] == "failed: outside the author's rights: bob may not run document keep here"
    (event,) = env.audit.events
    assert event["action"] == "association.run" and event["actor"] == "operator:bob"
    assert event["outcome"] == "denied" and event["details"]["refused_hosts"] == ["db-1"]

    env.acting.disabled.add("bob")
    (run,) = (await env.service.history(key, 10))[1]
    with pytest.raises(Conflict, match="the author 'bob' is disabled"):
        await env.service.apply_now(key)
    assert set((await statuses(env, key)).values()) == {"failed: the author 'bob' is disabled"}
    assert env.audit.events[-1]["outcome"] == "denied" and run.command_id in env.commands.made


async def test_a_failed_check_makes_the_host_drifted_until_it_passes(env: Env) -> None:
    key = await create(env, check_interval_seconds=5)
    await env.service.pass_once()
    (apply,) = env.commands.made.values()
    for host_id in apply.hosts:
        await env.commands.finish(apply.id, host_id, InvocationState.SUCCESS)
    due = (await env.service.get(key)).next_check_at
    assert due is not None
    await env.service.store.claim_check(key, due, T0)  # the check is due now
    await env.service.pass_once()
    (check,) = env.commands.of("check")
    assert check.spec.script == b"grep -q hi /tmp/x" and check.spec.env == {"FLEETOPS_PARAM_LINE": "hi"}
    assert check.spec.max_errors == "100%"
    await env.commands.finish(check.id, "id-web-1", InvocationState.FAILED, b"\nno hi in /tmp/x\n")
    await env.commands.finish(check.id, "id-web-2", InvocationState.SUCCESS)
    assert await statuses(env, key) == {"web-1": "drifted: no hi in /tmp/x", "web-2": "compliant"}
    assert (await env.service.get(key)).status == "drifted"


async def test_a_runbook_is_started_on_the_selector_one_execution_at_a_time_and_its_hosts_share_its_end(
    env: Env,
) -> None:
    key = await create(env, document="roll", parameters={"line": "yo"})
    await env.service.pass_once()
    ((first, started),) = env.runbooks.started.items()
    assert first.startswith("auto-") and not env.commands.made
    assert started == Started("operator:alice", "roll:1", {"line": "yo", "target": "role=web"}, f"association:{key}")
    assert await statuses(env, key) == {"web-1": "pending", "web-2": "pending"}

    # A new host waits for the running execution; a manual apply is refused meanwhile.
    env.fleet.hosts.append(host("web-3", role="web"))
    await env.service.pass_once()
    assert len(env.runbooks.started) == 1 and "web-3" not in await statuses(env, key)
    with pytest.raises(Conflict, match=f"still running its runbook: execution {first}"):
        await env.service.apply_now(key)

    # Once it has ended, the new host starts it again, on the whole target; its end is every host's.
    env.runbooks.end(first, "success")
    await env.service.pass_once()
    ((second, again),) = [(i, e) for i, e in env.runbooks.started.items() if i != first]
    assert again.parameters["target"] == "role=web"
    assert await statuses(env, key) == dict.fromkeys(["web-1", "web-2", "web-3"], "pending")
    env.runbooks.end(second, "failed", "step apply failed: exit code 1 on web-2")
    await env.service.pass_once()
    assert set((await statuses(env, key)).values()) == {
        f"non_compliant: runbook execution {second} failed: step apply failed: exit code 1 on web-2"
    }
    history = [(r.trigger.value, r.hosts, r.status) for r in (await env.service.history(key, 10))[1]]
    assert history == [("new-host", 3, "failed"), ("schedule", 2, "success")]


async def test_an_execution_that_ends_while_no_replica_follows_it_is_recorded_by_the_next_start(env: Env) -> None:
    key = await create(env, document="roll")
    await env.service.pass_once()
    (execution_id,) = env.runbooks.started
    env.runbooks.end(execution_id, "success")
    restarted = make_service(env.db, env.fleet, env.commands, env.acting, env.audit, env.runbooks)
    await restarted.pass_once()
    assert await statuses(env, key) == {"web-1": "compliant", "web-2": "compliant"}
    assert await restarted.store.unrecorded() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target": Target(hosts=("web-1",))}, "roll is a runbook: an association starts it on a selector"),
        ({"target": Target(all=True)}, "roll is a runbook: an association starts it on a selector"),
        ({"document": "fixed"}, "runbook fixed:1 has no string parameter 'target'"),
        ({"parameters": {"target": "role=db"}}, "--param target is given by the association"),
        ({"max_concurrency": "5"}, "--max-concurrency and --max-errors are for command documents"),
        ({"parameters": {"lne": "x"}}, "unknown parameter 'lne'"),
    ],
)
async def test_a_runbook_association_that_could_not_take_its_target_is_refused(
    env: Env, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await create(env, **{"document": "roll", **options})


async def test_a_runbook_is_started_only_where_the_author_may_start_it_on_every_host(env: Env) -> None:
    roll_web = "name: roll\nallow:\n  - actions: [document.run]\n    hosts: role=web\n    documents: [roll]\n"
    env.acting.roles["bob"] = [role_from_text(roll_web, "roll")]
    key = await create(env, selector="role in (web,db)", author="bob", document="roll")
    await env.service.pass_once()
    assert env.runbooks.started == {}  # db-1 is outside bob's rights, and a runbook acts on all of its target
    shown = await statuses(env, key)
    assert set(shown) == {"web-1", "web-2", "db-1"} and all(
        s.startswith("failed: outside the author's") for s in shown.values()
    )
    (event,) = env.audit.events
    assert event["outcome"] == "denied" and event["details"]["refused_hosts"] == ["db-1"]


async def test_a_creator_refused_on_a_selector_is_told_the_association_is_checked_on_every_host_it_could_match(
    env: Env,
) -> None:
    new = await env.service.prepare(
        "operator:bob", name="", document="keep", parameters={}, target=Target(selector="role in (web,db)"),
        schedule="rate(30 minutes)",
    )  # fmt: skip
    decision = env.service.creator_decision("bob", [role_from_text(WEB_ONLY, "web")], new)
    assert not decision.allowed
    assert "An association is checked against every host its target could match" in decision.message
    assert "window task" not in decision.message
