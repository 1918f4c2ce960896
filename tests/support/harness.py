"""Real processes for integration tests: a controller, agents and opsctl, on 127.0.0.1 ports chosen by the OS."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

PYTHON = sys.executable
BASE_ENV = {**os.environ, "GRPC_VERBOSITY": "ERROR", "PYTHONUNBUFFERED": "1"}


def candidate_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago, for a server that cannot bind port 0.

    Another process may take it before the server binds it: the caller must detect "address already
    in use" and try again with a new candidate (see ``conftest.postgres_server``). Servers that can
    bind port 0 (controller, agent, dev) do so and report the port they bound instead.
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail naming ``what`` after ``timeout``.

    For conditions only observable from outside (a host's status through opsctl); where a
    process announces an event on its output, use ``Process.wait_for_line`` instead.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


class Process:
    """A child process whose output lines are collected by a thread and can be awaited."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        *,
        inherit_env: bool = True,
    ) -> None:
        """Start ``args``; ``env`` adds to the test's environment, or is all of it without ``inherit_env``."""
        self.name = name
        self.args = args
        self.lines: list[str] = []
        self.next_index = 0
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**BASE_ENV, **(env or {})} if inherit_env else dict(env or {}),
            cwd=cwd,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match[str]:
        """Block until a line from index ``start`` on matches ``pattern``; fail if the process exits first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self.lines):
                    m = regex.search(self.lines[index])
                    index += 1
                    if m:
                        self.next_index = index  # where a wait for the *next* event should start
                        return m
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(
                        f"{self.name} exited with {self.proc.returncode} before printing /{pattern}/:\n{self.output()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name} did not print /{pattern}/ within {timeout}s:\n{self.output()}")
                self._cond.wait(min(remaining, 0.5))

    def line_count(self) -> int:
        with self._cond:
            return len(self.lines)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._finish()

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finish()
        return self.proc.returncode

    def _finish(self) -> None:
        self._reader.join(5)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()


def run(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 60.0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env={**BASE_ENV, **(env or {})}, capture_output=True, text=True, timeout=timeout, input=input
    )


class Controller:
    """``fleetops-controller serve`` in its own state directory, plus an admin opsctl profile."""

    def __init__(
        self,
        root: Path,
        *,
        database_url: str = "",
        extra_args: list[str] | None = None,
        name: str = "controller",
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.profile = root / "profile-admin"
        self.database_url = database_url
        self.extra_args = extra_args or []
        self.name = name
        self.env = env or {}
        self.process: Process | None = None
        self.ports: dict[str, int] = {}

    def init(self) -> None:
        args = [
            PYTHON,
            "-m",
            "fleetops.controller",
            "init",
            "--state-dir",
            str(self.state_dir),
            "--profile",
            str(self.root / "init-profile"),
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        result = run(args)
        assert result.returncode == 0, result.stderr

    def start(self, heartbeat: str = "1s", extra_args: list[str] | None = None) -> None:
        """Start (or restart: on the ports it had, so agents find it again) the controller."""
        if not (self.state_dir / "ca" / "ca.pem").exists():
            self.init()
        listen, enroll = self.ports.get("listen", 0), self.ports.get("enroll", 0)
        args = [
            PYTHON,
            "-m",
            "fleetops.controller",
            "serve",
            "--state-dir",
            str(self.state_dir),
            "--listen",
            f"127.0.0.1:{listen}",
            "--enroll-listen",
            f"127.0.0.1:{enroll}",
            "--metrics-listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
            "--heartbeat-interval",
            heartbeat,
            *self.extra_args,
            *(extra_args or []),
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
            if "--replica-id" not in args:  # controllers sharing a database are replicas: each needs its own id
                args += ["--replica-id", re.sub(r"[^A-Za-z0-9._-]", "-", self.name)]
        if self.process is not None:
            self.process.stop()
        self.process = Process(self.name, args, env=self.env)
        m = self.process.wait_for_line(r"fleetops-controller ready (\{.*\})", timeout=60)
        self.ports = json.loads(m.group(1))
        self.issue_profile("admin", self.profile)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports['listen']}"

    @property
    def ca_cert(self) -> Path:
        """The fleet CA certificate (PEM) agents pin when they register."""
        return self.state_dir / "ca" / "ca.pem"

    def issue_profile(self, operator: str, directory: Path, address: str = "", roles: tuple[str, ...] = ()) -> Path:
        result = run(
            [
                PYTHON,
                "-m",
                "fleetops.controller",
                "operator",
                "issue",
                operator,
                "--state-dir",
                str(self.state_dir),
                "--controller-address",
                address or self.address,
                "--profile",
                str(directory),
                *[arg for role in roles for arg in ("--role", role)],
                *(["--database-url", self.database_url] if self.database_url else []),
            ]
        )
        assert result.returncode == 0, result.stderr
        return directory

    def opsctl(self, *args: str, profile: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = run([PYTHON, "-m", "fleetops.opsctl", "--profile", str(profile or self.profile), *args])
        if check:
            assert result.returncode == 0, (
                f"opsctl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def opsctl_json(self, *args: str) -> Any:
        return json.loads(self.opsctl(*args, "-o", "json").stdout)

    def hosts(self, *args: str) -> list[dict[str, Any]]:
        return list(self.opsctl_json("hosts", "list", *args))

    def host_status(self, name: str) -> str:
        doc = json.loads(self.opsctl("hosts", "show", name, "-o", "json").stdout)
        return str(doc.get("status", "unspecified"))

    def create_activation(self, *args: str, tags: dict[str, str] | None = None) -> tuple[str, str]:
        """A new activation (id, code); ``tags`` become its (operator-set, authoritative) tags."""
        tag_args = [arg for k, v in (tags or {}).items() for arg in ("--tag", f"{k}={v}")]
        doc = json.loads(self.opsctl("activation", "create", *args, *tag_args, "-o", "json").stdout)
        return doc["id"], doc["code"]

    def ca_fingerprint(self) -> str:
        result = run([PYTHON, "-m", "fleetops.controller", "ca", "fingerprint", "--state-dir", str(self.state_dir)])
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Enrollable(Protocol):
    """Where an agent registers and then connects: a :class:`Controller`, or ``replicas.ReplicaSet``
    (several controllers behind load balancers)."""

    @property
    def address(self) -> str: ...  # the mTLS HOST:PORT the agent keeps dialing

    @property
    def ports(self) -> dict[str, int]: ...  # ports["enroll"]: the enrollment port on the same host

    @property
    def ca_cert(self) -> Path: ...


class Agent:
    """``fleetops-agent`` with its own state directory."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.state_dir = root / f"agent-{name}"
        self.process: Process | None = None
        self.host_id = ""

    def register(
        self,
        controller: Enrollable,
        activation_id: str,
        code: str,
        tags: dict[str, str] | None = None,
        *,
        check: bool = True,
        pin: str = "cert",
    ) -> subprocess.CompletedProcess[str]:
        args = [
            PYTHON,
            "-m",
            "fleetops.agent",
            "--state-dir",
            str(self.state_dir),
            "register",
            "--controller",
            controller.address,
            "--enroll-port",
            str(controller.ports["enroll"]),
            "--activation-id",
            activation_id,
            "--activation-code",
            code,
            "--name",
            self.name,
        ]
        if pin == "cert":
            args += ["--ca-cert", str(controller.ca_cert)]
        else:
            args += ["--ca-fingerprint", pin]
        for k, v in (tags or {}).items():
            args += ["--tag", f"{k}={v}"]
        result = run(args)
        if check:
            assert result.returncode == 0, f"register failed:\n{result.stdout}\n{result.stderr}"
        if result.returncode == 0:
            self.host_id = json.loads((self.state_dir / "agent.json").read_text())["host_id"]
        return result

    def start(
        self, wait_connected: bool = True, env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> None:
        if self.process is not None:
            self.process.stop()
        self.process = Process(
            f"agent {self.name}",
            [PYTHON, "-m", "fleetops.agent", "--state-dir", str(self.state_dir), "run", *(args or [])],
            env=env,
        )
        if wait_connected:
            self.wait_connected()

    def wait_connected(self, timeout: float = 30.0, start: int = 0) -> None:
        assert self.process is not None
        self.process.wait_for_line(r"connected to .* as host", timeout=timeout, start=start)

    @property
    def display_name(self) -> str:
        return json.loads((self.state_dir / "agent.json").read_text())["hostname"]

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def stop(self) -> int:
        return self.process.stop() if self.process else 0


def start_fleet(controller: Controller, root: Path, hosts: dict[str, dict[str, str]]) -> dict[str, Agent]:
    """Register (one activation each) and start an agent per name with its tags; all connected on return.

    The tags are the activation's (operator-set): hosts cannot choose tags that count for access.
    """
    agents = {}
    for name, tags in hosts.items():
        activation_id, code = controller.create_activation("--limit", "1", tags=tags)
        agent = Agent(root, name)
        agent.register(controller, activation_id, code)
        agent.start()
        agents[name] = agent
    return agents


def login(controller: Controller, profile: Path, token: str) -> str:
    result = controller.opsctl(
        "login", "--controller", controller.address, "--enroll-port", str(controller.ports["enroll"]),
        "--token", token, profile=profile,
    )  # fmt: skip
    return result.stdout


def create_user(controller: Controller, name: str, *roles: str) -> str:
    args = [arg for role in roles for arg in ("--role", role)]
    doc = controller.opsctl_json("admin", "user", "create", name, *args)
    return str(doc["token"])
