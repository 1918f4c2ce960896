"""A real fleetops controller for the benchmarks: started as a child, with an admin profile.

``start_controller`` runs ``fleetops-controller init`` (optionally registering simulated hosts
straight in its database, see connect_support.register_hosts), then ``serve`` on 127.0.0.1 with
ephemeral ports, and issues an admin operator profile. Also: polling a probe until it reaches a
value, and py-spy recording of a child.
"""

from __future__ import annotations

import asyncio
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

    def gauge(self) -> float:
        """The controller's ``fleetops_connected_agents`` gauge (blocking HTTP)."""
        return connected_gauge(self.ports["metrics"])


async def start_controller(
    children: Children, directory: Path, *, hosts: int = 0, creds: Path | None = None, log: str = "controller.log"
) -> Controller:
    """``init`` a controller in ``directory``, optionally register ``hosts`` straight in its database
    (their credentials go to ``creds``, see register_hosts), ``serve`` it on ephemeral ports and
    issue an admin operator profile (``directory/profile``)."""
    state, profile = directory, directory / "profile"
    ctl = ["-m", "fleetops.controller"]
    await run(PY, *ctl, "init", "--state-dir", str(state), "--profile", str(profile))
    if hosts:
        assert creds is not None
        await register_hosts(state, hosts, creds)
    serve = "serve --listen 127.0.0.1:0 --enroll-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0".split()
    proc = await children.spawn(PY, *ctl, *serve, "--state-dir", str(state), log=log)
    m = await wait_for_line(children.tmp / log, r"fleetops-controller ready (\{.*\})", proc, 60)
    controller = Controller(proc, state, profile, json.loads(m.group(1)))
    issue = ["operator", "issue", "admin", "--controller-address", controller.address]
    await run(PY, *ctl, *issue, "--state-dir", str(state), "--profile", str(profile))
    return controller


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
