"""A real fleetops controller for the benchmarks: started as a child, with an admin profile.

``start_controller`` runs ``fleetops-controller init`` (optionally registering simulated hosts
straight in its database, see connect_support.register_hosts), then ``serve`` on 127.0.0.1 with
ephemeral ports, and issues an admin operator profile; ``start_replicas`` runs several of them on
one PostgreSQL database and one CA (issue 14). Also: polling a probe until it reaches a
value, and py-spy recording of a child.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connect_support import PY, Children, connected_gauge, register_hosts, run, wait_for_line


@dataclass
class Controller:
    """A ``fleetops-controller serve`` child on 127.0.0.1 with an admin operator profile."""

    proc: asyncio.subprocess.Process
    state: Path
    profile: Path
    ports: dict[str, int]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports['listen']}"

    @property
    def opsctl(self) -> list[str]:
        """The command line prefix of ``opsctl`` as the admin operator of this controller."""
        return [PY, "-m", "fleetops.opsctl", "--profile", str(self.profile)]

    def gauge(self, name: str = "fleetops_connected_agents") -> float:
        """The controller's gauge ``name`` (default: connected agents; blocking HTTP)."""
        return connected_gauge(self.ports["metrics"], name)


async def start_controller(
    children: Children,
    directory: Path,
    *,
    hosts: int = 0,
    creds: Path | None = None,
    log: str = "controller.log",
    database_url: str = "",
    serve_args: tuple[str, ...] = (),
    init: bool = True,
) -> Controller:
    """``init`` a controller in ``directory``, optionally register ``hosts`` straight in its database
    (their credentials go to ``creds``, see register_hosts), ``serve`` it on ephemeral ports and
    issue an admin operator profile (``directory/profile``).

    ``database_url`` (default: SQLite in ``directory``) and ``serve_args`` go to serve; ``init=False``
    skips init and the hosts (a further replica: its CA is already in ``directory/ca``)."""
    state, profile = directory, directory / "profile"
    ctl = ["-m", "fleetops.controller"]
    database = ["--database-url", database_url] if database_url else []
    if init:
        await run(PY, *ctl, "init", "--state-dir", str(state), "--profile", str(profile), *database)
        if hosts:
            assert creds is not None
            await register_hosts(state, hosts, creds, database_url)
    serve = "serve --listen 127.0.0.1:0 --enroll-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0".split()
    proc = await children.spawn(PY, *ctl, *serve, "--state-dir", str(state), *database, *serve_args, log=log)
    m = await wait_for_line(children.tmp / log, r"fleetops-controller ready (\{.*\})", proc, 60)
    controller = Controller(proc, state, profile, json.loads(m.group(1)))
    issue = ["operator", "issue", "admin", "--controller-address", controller.address]
    await run(PY, *ctl, *issue, "--state-dir", str(state), "--profile", str(profile), *database)
    return controller


async def start_replicas(
    children: Children, directory: Path, count: int, database_url: str, *, hosts: int = 0, creds: Path | None = None
) -> list[Controller]:
    """``count`` replicas ``r1``..``rN`` on one PostgreSQL database, one CA and one object store.

    The shape of tests/support/replicas.py without its load balancers (the bench's agents dial each
    replica's own port): ``r1`` is initialised (CA, admin, schema, the ``hosts``) and started first;
    its whole ``ca/`` directory (with the audit checkpoint key made at its first start) is then
    copied into each other replica's state directory before that one's first start. Replica ``rN``'s
    state is ``directory/rN``, its log ``<directory name>-rN.log``; every one has an admin profile."""
    objects = ("--object-store", (directory / "objects").as_uri())

    def serve_args(i: int) -> tuple[str, ...]:
        return ("--replica-id", f"r{i + 1}", *objects)

    first = await start_controller(
        children,
        directory / "r1",
        hosts=hosts,
        creds=creds,
        log=f"{directory.name}-r1.log",
        database_url=database_url,
        serve_args=serve_args(0),
    )
    for i in range(1, count):
        shutil.copytree(first.state / "ca", directory / f"r{i + 1}" / "ca")
    others = await asyncio.gather(
        *(
            start_controller(
                children,
                directory / f"r{i + 1}",
                log=f"{directory.name}-r{i + 1}.log",
                database_url=database_url,
                serve_args=serve_args(i),
                init=False,
            )
            for i in range(1, count)
        )
    )
    replicas = [first, *others]
    # Each replica learns the others' addresses when it re-reads the replica table (every third of
    # --replica-dead-after); until then a command created on it silently misses the hosts the
    # others hold (they wait for --command-ack-timeout). A deployment is steady before it is
    # measured: wait until every replica counts them all.
    for replica in replicas:
        alive = await poll(functools.partial(replicas_alive, replica), count, 30)
        if alive != count:
            raise RuntimeError(f"{replica.state.name} sees {alive} replicas alive after 30 s, want {count}")
    return replicas


async def replicas_alive(controller: Controller) -> float:
    """The replicas ``controller`` knows alive, itself included (``fleetops_replicas_alive``)."""
    return await asyncio.to_thread(controller.gauge, "fleetops_replicas_alive")


def gauge_sum(controllers: list[Controller]) -> float:
    """``fleetops_connected_agents`` summed over ``controllers`` (blocking HTTP)."""
    return sum(c.gauge() for c in controllers)


async def poll(probe: Callable[[], Awaitable[Any]], want: Any, timeout: float, interval: float = 0.2) -> Any:
    """Call ``await probe()`` until it returns ``want`` or ``timeout`` passes; the last value."""
    deadline, value = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if (value := await probe()) == want:
            break
        await asyncio.sleep(interval)
    return value


async def start_py_spy(children: Children, pid: int, output: str) -> asyncio.subprocess.Process:
    """py-spy recording ``pid`` (``.svg``: a flame graph, else collapsed stacks) until stop_py_spy."""
    fmt = "flamegraph" if output.endswith(".svg") else "raw"
    record = ["record", "--rate", "200", "--nonblocking", "--format", fmt, "--output", str(Path(output).resolve())]
    py_spy = shutil.which("py-spy", path=str(Path(PY).parent)) or "py-spy"
    spy = await children.spawn(py_spy, *record, "--pid", str(pid), log="py-spy.log")
    await asyncio.sleep(1.5)  # py-spy attaches
    return spy


async def stop_py_spy(spy: asyncio.subprocess.Process) -> None:
    """Stop py-spy (it writes its output on SIGINT); a py-spy that failed has said why in py-spy.log."""
    if spy.returncode is None:
        os.kill(spy.pid, signal.SIGINT)
    await asyncio.wait_for(spy.wait(), 60)
