"""Window tasks run with their author's rights, decided at run time; changing a window needs its tasks' rights.

The scheduler on an injected clock with fake hosts, users and commands (conftest.py); roles and
the audit log are real.
"""

from __future__ import annotations

from typing import Any

import pytest

from fleetops.common.errors import NotFound
from fleetops.common.roles import Role
from fleetops.controller.audit.models import AuditQuery
from fleetops.controller.fleet.models import Host, HostStatus, Target
from fleetops.controller.windows.authority import RUN_ACTION
from fleetops.controller.windows.models import Window, WindowTask

#: conftest.py's ``env`` fixture (its classes cannot be imported under --import-mode=importlib).
Env = Any

WEB = {"name": "web", "allow": [{"actions": ["command.run", "patch.scan"], "hosts": "role=web", "logins": ["deploy"]}]}
BOB = "operator:bob"


def host(name: str, **tags: str) -> Host:
    return Host(f"id-{name}", name, HostStatus.ONLINE, dict(tags), {}, "", None, None, None, None)  # type: ignore[arg-type]  # no registration time needed


def run_task(window: str, target: Target, *, run_as: str = "deploy", max_errors: str = "") -> WindowTask:
    return WindowTask(
        window=window, priority=1, type="run", target=target, argv=("true",), run_as=run_as, max_errors=max_errors
    )


async def open_window(env: Env, name: str, *tasks: tuple[WindowTask, str]) -> None:
    await env.service.create("operator:alice", Window(name, "at(2026-03-28T13:00)", duration_seconds=3600))
    for task, author in tasks:
        await env.service.add_task(task, author)
    env.clock.advance(hours=1)
    await env.service.tick()
    await env.commands.settle(env.service)


async def run_events(env: Env) -> list[Any]:
    return [e for e in await env.audit.list(AuditQuery(action=RUN_ACTION)) if e.action == RUN_ACTION]


@pytest.fixture
async def web_env(env: Env) -> Env:
    await env.roles.put("operator:alice", WEB, create=True)
    env.users.add("bob", "web")
    env.fleet.hosts = [host("web-1", role="web"), host("web-2", role="web"), host("db-1", role="db")]
    return env


async def test_hosts_outside_the_authors_rights_are_refused_named_and_counted(web_env: Env) -> None:
    env = web_env
    env.fleet.tag("db-1", role="web", tier="db")  # an admin tags a host into bob's selector... the rule
    env.fleet.hosts.append(host("pay-1", role="pay"))
    await env.roles.put(
        "operator:alice",
        {**WEB, "deny": [{"actions": ["*"], "hosts": "tier=db"}]},
        create=False,
    )
    await open_window(env, "w", (run_task("w", Target(selector="role in (web,pay)"), max_errors="2"), BOB))
    ((target, ran_on),) = env.commands.targets
    assert sorted(ran_on) == ["web-1", "web-2"] and target.hosts  # the granted hosts, by id
    actor, spec = env.commands.created[0]
    assert actor == "operator:bob via window:w" and spec.max_errors == "0"  # 2 allowed - 2 refused
    env.commands.finish("cmd-1")
    await env.commands.settle(env.service)
    ((execution,),) = [await env.service.history("w")]
    (task,) = execution.tasks
    assert task.status.value == "failed" and task.author == BOB
    assert sorted(task.refused_hosts) == ["db-1", "pay-1"] and task.counts["refused"] == 2
    assert "2 hosts refused" in task.reason and "db-1" in task.reason
    (event,) = await run_events(env)
    details = event.details
    assert event.actor == BOB and event.outcome == "denied" and event.target == f"w/{task.task_id}"
    assert details["via"] == "window:w" and details["execution"] == execution.id
    assert sorted(details["refused_hosts"]) == ["db-1", "pay-1"] and details["permitted"] == 2


async def test_more_refused_hosts_than_max_errors_start_nothing(web_env: Env) -> None:
    env = web_env
    env.fleet.tag("db-1", role="web", tier="x")
    await env.roles.put("operator:alice", {**WEB, "deny": [{"actions": ["*"], "hosts": "tier=x"}]}, create=False)
    await open_window(env, "w", (run_task("w", Target(selector="role=web")), BOB))  # max-errors 0
    assert env.commands.created == []
    (execution,) = await env.service.history("w")
    (task,) = execution.tasks
    assert task.status.value == "failed" and "nothing was started" in task.reason
    assert task.refused_hosts == ("db-1",)


async def test_every_host_refused_sends_nothing(web_env: Env) -> None:
    env = web_env
    await open_window(env, "w", (run_task("w", Target(selector="role=db")), BOB))
    assert env.commands.created == []
    (execution,) = await env.service.history("w")
    assert execution.tasks[0].status.value == "failed" and execution.tasks[0].refused_hosts == ("db-1",)
    assert "refused on every host" in execution.tasks[0].reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [("disable", "'bob' is disabled"), ("delete", "'bob' was deleted"), ("role", "refused on every host")],
)
async def test_an_author_who_may_no_longer_act_fails_the_task(web_env: Env, change: str, reason: str) -> None:
    env = web_env
    await env.service.create("operator:alice", Window("w", "at(2026-03-28T13:00)", duration_seconds=3600))
    await env.service.add_task(run_task("w", Target(selector="role=web")), BOB)
    if change == "disable":
        env.users.add("bob", "web", disabled=True)
    elif change == "delete":
        del env.users.users["bob"]
    else:
        env.users.add("bob")  # no roles any more
    env.clock.advance(hours=1)
    await env.service.tick()
    await env.commands.settle(env.service)
    assert env.commands.created == []
    (execution,) = await env.service.history("w")
    assert execution.status.value == "failed"
    assert execution.tasks[0].status.value == "failed" and reason in execution.tasks[0].reason
    (event,) = await run_events(env)
    assert event.actor == BOB and event.outcome == "denied"


async def test_a_task_without_an_operator_author_never_runs(env: Env) -> None:
    # What a row from before authors existed would be if its window had no operator creator.
    await open_window(env, "w", (run_task("w", Target(all=True), run_as="root"), "window:w"))
    assert env.commands.created == []
    (execution,) = await env.service.history("w")
    assert "not an operator" in execution.tasks[0].reason


async def test_a_host_that_appears_between_decision_and_command_is_refused(web_env: Env) -> None:
    env = web_env
    real_create = env.commands.create

    async def create_after_a_retag(*args: Any, **kwargs: Any) -> Any:
        env.fleet.tag("web-2", role="web", tier="pay")  # now denied
        return await real_create(*args, **kwargs)

    await env.roles.put("operator:alice", {**WEB, "deny": [{"actions": ["*"], "hosts": "tier=pay"}]}, create=False)
    env.commands.create = create_after_a_retag  # type: ignore[method-assign]  # a race, made to happen
    await open_window(env, "w", (run_task("w", Target(selector="role=web")), BOB))
    assert env.commands.created == []
    (execution,) = await env.service.history("w")
    assert execution.tasks[0].status.value == "failed" and "web-2" in execution.tasks[0].reason


# -- who may change a window ----------------------------------------------------------------------


async def editor(env: Env, user: str, window: str, new: WindowTask | None = None) -> list[Any]:
    u = await env.users.get(user)
    roles: list[Role] = await env.roles.resolve(u.roles)
    return await env.service.authority.editor_decisions(user, roles, window, await env.service.tasks(window), new=new)


async def test_changing_a_window_needs_the_rights_of_each_of_its_tasks(web_env: Env) -> None:
    env = web_env
    await env.roles.put("operator:alice", {"name": "manager", "allow": [{"actions": ["window.manage"]}]}, create=True)
    env.users.add("mallory", "manager")
    await env.service.create("operator:alice", Window("w", "at(2026-03-28T13:00)", duration_seconds=3600))
    await env.service.add_task(run_task("w", Target(all=True), run_as="root"), "operator:alice")

    *_, refused = await editor(env, "mallory", "w")
    assert not refused and "changing window 'w'" in refused.message and "every host" in refused.message
    *_, bob = await editor(env, "bob", "w")
    assert not bob  # bob may run on web hosts as deploy, not everywhere as root
    assert all(await editor(env, "alice", "w"))


async def test_a_new_task_is_decided_on_its_selector_not_on_todays_hosts(web_env: Env) -> None:
    env = web_env
    await env.service.create("operator:alice", Window("w", "at(2026-03-28T13:00)", duration_seconds=3600))
    # Matches no host today: still refused, since it could match hosts outside role=web.
    (empty,) = await editor(env, "bob", "w", run_task("w", Target(selector="team=x")))
    assert not empty and "could match hosts" in empty.message
    (inside,) = await editor(env, "bob", "w", run_task("w", Target(selector="role=web,team=x")))
    assert inside
    (named,) = await editor(env, "bob", "w", run_task("w", Target(hosts=("web-1",))))
    assert named
    (db,) = await editor(env, "bob", "w", run_task("w", Target(hosts=("web-1", "db-1"))))
    assert not db and "db-1" in db.message
    with pytest.raises(NotFound):
        await editor(env, "bob", "w", run_task("w", Target(hosts=("nope",))))


async def test_a_named_host_that_is_gone_needs_rights_on_every_host(web_env: Env) -> None:
    env = web_env
    await env.service.create("operator:alice", Window("w", "at(2026-03-28T13:00)", duration_seconds=3600))
    await env.service.add_task(run_task("w", Target(hosts=("web-1",))), BOB)
    env.fleet.hosts = [h for h in env.fleet.hosts if h.name != "web-1"]
    (gone,) = await editor(env, "bob", "w")
    assert not gone and "no such host now" in gone.message
    assert all(await editor(env, "alice", "w"))
