"""``fleetops-controller dev``: a whole system on one machine, on embedded defaults.

Starts a controller (SQLite, local-directory object store, its own CA), enrolls one local agent
through a real activation and runs it as a separate process over mTLS, and writes an opsctl
profile for the first admin. Everything lives in the state directory (default ``./.dev``), so a
second start reuses the CA, the database and the agent's identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from fleetops.common import pki
from fleetops.common.errors import Unavailable
from fleetops.common.profile import profile_dir
from fleetops.controller.app import Controller
from fleetops.controller.bootstrap import init_state, issue_operator_profile
from fleetops.controller.settings import ControllerSettings

log = logging.getLogger("fleetops.dev")


async def _run_agent_command(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetops.agent",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def _without_start_hint(register_output: str) -> str:
    """``fleetops-agent register``'s report without its "start the agent: ..." line: dev starts it itself."""
    lines = register_output.strip().splitlines()
    return "\n".join(line for line in lines if not line.startswith("start the agent:"))


def _agent_name(agent_dir: Path) -> str:
    """The local agent's host name as opsctl takes it (shell-quoted), or NAME when it cannot be read."""
    try:
        name = json.loads((agent_dir / "agent.json").read_text()).get("hostname")
    except (OSError, ValueError, AttributeError):
        name = None
    return shlex.quote(name) if isinstance(name, str) and name else "NAME"


async def run_dev(
    state_dir: Path, port: int, metrics_port: int, profile: Path | None, tuning: Mapping[str, Any] | None = None
) -> int:
    """Run the dev system until Ctrl-C or the agent exits; ``tuning``: timeouts and limits, as serve takes them."""
    settings = ControllerSettings(
        state_dir=state_dir,
        listen=f"127.0.0.1:{port}",
        enroll_listen=f"127.0.0.1:{port + 1 if port else 0}",  # --port 0: any free ports (tests)
        metrics_listen=f"127.0.0.1:{metrics_port}",
        console_listen=f"127.0.0.1:{port + 2 if port else 0}",
        **(tuning or {}),
    )
    authority = init_state(settings)
    controller = Controller(settings)
    try:
        ports = await controller.start()
    except RuntimeError as exc:  # grpc raises RuntimeError when it cannot bind
        raise Unavailable(
            f"cannot listen on 127.0.0.1:{port}, {port + 1} or {port + 2}: {exc}",
            "another controller may be running; stop it or pass --port",
        ) from exc
    address = f"localhost:{ports.listen}"
    await controller.users.ensure("dev", "admin", ["admin"])
    profile_path = issue_operator_profile(
        authority, "admin", address, profile or profile_dir(), settings.operator_certificate_lifetime
    )
    agent_dir = state_dir / "agent"
    agent = None
    try:
        if not (agent_dir / "agent.json").exists():
            activation, code = await controller.enrollment.create_activation(
                created_by="dev",
                default_tags={"env": "dev"},
                registration_limit=1,
                expires_in=timedelta(minutes=10),
                description="fleetops-controller dev: the local agent",
            )
            rc, out = await _run_agent_command(
                "--state-dir",
                str(agent_dir),
                "register",
                "--controller",
                address,
                "--enroll-port",
                str(ports.enroll),
                "--activation-id",
                activation.id,
                "--activation-code",
                code,
                "--ca-fingerprint",
                pki.fingerprint_sha256(authority.cert),
            )
            print(_without_start_hint(out), flush=True)
            if rc != 0:
                print("error: the local agent could not register (see above)", file=sys.stderr)
                return rc
        console = await controller.console_link((profile_path / "operator.pem").read_bytes())
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleetops.agent", "--state-dir", str(agent_dir), "run"
        )
        print(
            "\nfleetops is running:\n"
            f"  controller   {address} (mTLS), enrollment on port {ports.enroll}, metrics http://127.0.0.1:{ports.metrics}/metrics\n"
            f"  state        {state_dir}\n"
            f"  local agent  pid {agent.pid}, state in {agent_dir}\n"
            f"  opsctl       profile written to {profile_path}\n"
            f"  web console  {console}\n"
            "               (signs in once, within two minutes: opsctl console prints a new link; the\n"
            f"               browser must trust the fleet CA, {profile_path / 'ca.pem'})\n"
            "\nIn another terminal (with the same virtualenv active) try:\n"
            "  opsctl hosts list\n"
            f"  opsctl hosts show {_agent_name(agent_dir)}\n"
            "  opsctl run --all -- uname -a\n"
            "  opsctl activation create --tag env=prod --limit 10 --expires 24h\n"
            "  opsctl audit list\n"
            "\nPress Ctrl-C to stop.",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        agent_exit = asyncio.create_task(agent.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({agent_exit, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if agent_exit.done():
            print(f"the local agent exited with status {agent.returncode}; stopping", file=sys.stderr)
        stopper.cancel()
        return 0
    finally:
        if agent is not None and agent.returncode is None:
            agent.terminate()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(agent.wait(), 10)
            if agent.returncode is None:
                agent.kill()
        await controller.stop()
