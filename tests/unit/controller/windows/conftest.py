"""The window service on an injected clock over a real (SQLite) store, with fake commands, hosts and users.

Roles and the audit log are the real ones on the same database; commands "run" until a test
finishes them; the fleet is a list of hosts with tags; users are a dict.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleetops.common.errors import NotFound
from fleetops.common.selectors import Selector
from fleetops.common.states import CommandStatus
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz.store import RoleStore
from fleetops.controller.fleet.models import Host, HostStatus, Target
from fleetops.controller.store import database
from fleetops.controller.users.models import User
from fleetops.controller.windows.authority import TaskAuthority
from fleetops.controller.windows.service import WindowService

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
#: Seconds a test waits for an execution to get somewhere before it fails.
WAIT = 10.0


def host(name: str, **tags: str) -> Host:
    return Host(f"id-{name}", name, HostStatus.ONLINE, dict(tags), {}, "", T0, None, None, None)


class FakeFleet:
    def __init__(self) -> None:
        self.hosts: list[Host] = [host("h1")]

    async def list_hosts(self, target: Target, include_deregistered: bool = False) -> list[Host]:
        if target.all or target.empty:
            return list(self.hosts)
        if target.hosts:
            by_key = {h.name: h for h in self.hosts} | {h.id: h for h in self.hosts}
            missing = [k for k in target.hosts if k not in by_key]
            if missing:
                raise NotFound("no such host: " + ", ".join(missing))
            return [by_key[k] for k in target.hosts]
        selector = Selector.parse(target.selector)
        return [h for h in self.hosts if selector.matches(h.tags)]

    async def resolve_target(self, target: Target) -> list[Host]:
        return await self.list_hosts(target)

    def tag(self, name: str, **tags: str) -> None:
        self.hosts = [host(name, **tags) if h.name == name else h for h in self.hosts]


class FakeUsers:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    def add(self, name: str, *roles: str, disabled: bool = False) -> None:
        self.users[name] = User(name, roles, disabled, T0, "test", T0)

    async def get(self, name: str) -> User:
        if name not in self.users:
            raise NotFound(f"no user {name!r}")
        return self.users[name]


@dataclass
class FakeCommand:
    id: str
    status: CommandStatus = CommandStatus.IN_PROGRESS
    counts: dict[str, int] = field(default_factory=dict)


class FakeCommands:
    """``create`` resolves the target through the fake fleet and asks ``authorize``, as the real one does.

    It knows which execution tasks wait on their commands (subscribed, and not told of a change
    since): :meth:`settle` waits for that instead of for time to pass.
    """

    def __init__(self, fleet: FakeFleet) -> None:
        self.fleet = fleet
        self.created: list[tuple[str, Any]] = []
        self.targets: list[tuple[Target, list[str]]] = []
        self.commands: dict[str, FakeCommand] = {}
        self.cancelled: list[str] = []
        self.queues: dict[str, set[asyncio.Queue[None]]] = {}
        self.subscribers: dict[asyncio.Queue[None], asyncio.Task[Any] | None] = {}
        self.waiting: set[asyncio.Task[Any]] = set()  # tasks blocked on commands, not told of a change since
        self.subscribed = asyncio.Event()

    async def create(
        self, actor: str, target: Target, spec: Any, *, authorize: Callable[[list[Host]], None] | None = None
    ) -> tuple[FakeCommand, list[Host]]:
        hosts = await self.fleet.resolve_target(target)
        if not hosts:
            raise NotFound(f"no host matches {target.describe()}")
        if authorize is not None:
            authorize(hosts)
        command = FakeCommand(f"cmd-{len(self.created) + 1}")
        self.created.append((actor, spec))
        self.targets.append((target, [h.name for h in hosts]))
        self.commands[command.id] = command
        return command, hosts

    async def command(self, command_id: str) -> FakeCommand:
        return self.commands[command_id]

    async def cancel(self, command_id: str) -> None:
        self.cancelled.append(command_id)
        self.finish(command_id, CommandStatus.CANCELLED)

    def finish(self, command_id: str, status: CommandStatus = CommandStatus.SUCCESS) -> None:
        self.commands[command_id].status = status
        for queue in self.queues.get(command_id, ()):
            if (task := self.subscribers.get(queue)) is not None:
                self.waiting.discard(task)  # it wakes: busy until it waits again
            if queue.empty():
                queue.put_nowait(None)

    def subscribe(self, command_id: str) -> asyncio.Queue[None]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self.queues.setdefault(command_id, set()).add(queue)
        task = self.subscribers[queue] = asyncio.current_task()
        if task is not None:
            self.waiting.add(task)
        self.subscribed.set()
        return queue

    def unsubscribe(self, command_id: str, queue: asyncio.Queue[None]) -> None:
        self.queues.get(command_id, set()).discard(queue)
        task = self.subscribers.pop(queue, None)
        if task is not None and task not in self.subscribers.values():
            self.waiting.discard(task)

    async def settle(self, service: WindowService) -> None:
        """Until every execution ``service`` started waits on its commands or has ended (no time passes)."""
        async with asyncio.timeout(WAIT):
            while True:
                running = [t for t in service.scheduler.running.values() if not t.done()]
                if all(t in self.waiting for t in running):
                    return
                self.subscribed.clear()
                subscribed = asyncio.ensure_future(self.subscribed.wait())
                try:
                    await asyncio.wait([subscribed, *running], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    subscribed.cancel()

    async def ended(self, service: WindowService) -> None:
        """Until every execution ``service`` started has ended."""
        running = list(service.scheduler.running.values())
        if running:
            await asyncio.wait_for(asyncio.gather(*running), WAIT)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Env:
    service: WindowService
    commands: FakeCommands
    clock: Clock
    fleet: FakeFleet
    users: FakeUsers
    roles: RoleStore
    audit: AuditLog


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await database.ensure_schema(engine, migrate=True)
    db = database.session_factory(engine)
    clock, fleet, users = Clock(), FakeFleet(), FakeUsers()
    users.add("alice", "admin")
    commands = FakeCommands(fleet)
    roles, audit = RoleStore(db), AuditLog(db)
    authority = TaskAuthority(fleet, users, roles, audit)  # type: ignore[arg-type]  # fakes of FleetService, UserService
    service = WindowService(
        db,
        commands,  # type: ignore[arg-type]  # a fake CommandService
        None,  # type: ignore[arg-type]  # no patch tasks here
        "test:1",
        authority=authority,
        min_duration=1,
        clock=clock,
    )
    yield Env(service, commands, clock, fleet, users, roles, audit)
    await service.stop()
    await engine.dispose()


@pytest.fixture
def setup(env: Env) -> tuple[WindowService, FakeCommands, Clock]:
    return env.service, env.commands, env.clock
