"""A host behind its own network link, which a test can cut: an agent in a Linux network namespace.

Each :class:`VethHost` is a network namespace joined to the root namespace by a veth pair with
private test addresses, ``10.200.<n>.1/30`` on the root side and ``10.200.<n>.2/30`` in the
namespace (``<n>`` unused on this machine when it is created). A process started with
:attr:`VethHost.prefix` runs inside the namespace: it reaches the root namespace only at
``10.200.<n>.1`` (the namespace's 127.0.0.1 is its own). So the controllers' balancers get a twin
listening on that address (:class:`VethBalancer`), the controllers a server certificate that names
it (``serve --san``), and the agent is registered with it (:class:`VethEntry`, :class:`NetnsAgent`).

:meth:`VethHost.cut` takes the root side of the veth pair down: every packet between the namespace
and the rest of the machine is dropped, TCP connections stay open on both ends without a reset (as
when a network path fails), and new connections fail ("no route to host"). :meth:`VethHost.restore`
brings it back up; connections that survived carry on. Traffic never leaves this machine.

Needs root and ``ip netns`` (iproute2); :func:`require_netns` skips the test with the reason
otherwise. (The kernel here has no ``netem`` qdisc, so the cut is a link going down, not packet loss.)
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import PYTHON, Agent, Process
from load_balancer import LoadBalancer, Target

PREFIX = "fo"  # names: fo<n>r (root side), fo<n>n (namespace side), namespace fleetops-<n>


def _ip(*args: str, netns: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def require_netns() -> None:
    """Skip the calling test unless it runs as root with a working ``ip netns``; with
    FLEETOPS_REQUIRE_NETNS=1 (CI) fail instead of skipping."""

    def unable(reason: str) -> None:
        if os.environ.get("FLEETOPS_REQUIRE_NETNS") == "1":
            pytest.fail(f"FLEETOPS_REQUIRE_NETNS=1 but {reason}")
        pytest.skip(f"{reason} (run as root with iproute2 installed to enable them)")

    if os.geteuid() != 0:
        unable("network partition tests need root (ip netns, veth pairs)")
    if shutil.which("ip") is None:
        unable("network partition tests need iproute2's ip command")
    probe = f"fleetops-probe-{os.getpid()}"
    added = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if added.returncode != 0:
        unable(f"ip netns is not usable here: {added.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)


def _used_subnets() -> set[int]:
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=30).stdout
    return {int(m.group(1)) for m in re.finditer(r"inet 10\.200\.(\d+)\.", shown)}


class VethHost:
    """A network namespace linked to the root namespace by a veth pair; see the module docstring.

    Use as a context manager (or call :meth:`create` and :meth:`remove`): the namespace, the veth
    pair and any process left inside are removed on exit, also when the test failed.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.netns = f"fleetops-{n}"
        self.root_dev = f"{PREFIX}{n}r"
        self.ns_dev = f"{PREFIX}{n}n"
        self.root_address = f"10.200.{n}.1"  # where processes in the namespace reach the root namespace
        self.ns_address = f"10.200.{n}.2"
        self.is_cut = False

    @classmethod
    def new(cls, avoid: set[int] | None = None) -> VethHost:
        """A host on a ``10.200.<n>.0/30`` not in use on this machine (nor in ``avoid``), created."""
        used = _used_subnets() | (avoid or set())
        candidates = [n for n in range(1, 255) if n not in used]
        random.shuffle(candidates)
        for n in candidates[:5]:
            host = cls(n)
            try:
                return host.create()
            except RuntimeError:
                host.remove()  # taken meanwhile (another run): try the next one
        raise RuntimeError("no free 10.200.<n>.0/30 for a veth pair")

    @property
    def prefix(self) -> list[str]:
        """The argv prefix that runs a command inside the namespace."""
        return ["ip", "netns", "exec", self.netns]

    def create(self) -> VethHost:
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.root_dev, "type", "veth", "peer", "name", self.ns_dev)
        _ip("link", "set", self.ns_dev, "netns", self.netns)
        _ip("addr", "add", f"{self.root_address}/30", "dev", self.root_dev)
        _ip("link", "set", self.root_dev, "up")
        _ip("addr", "add", f"{self.ns_address}/30", "dev", self.ns_dev, netns=self.netns)
        _ip("link", "set", self.ns_dev, "up", netns=self.netns)
        _ip("link", "set", "lo", "up", netns=self.netns)
        return self

    def cut(self) -> None:
        """Drop every packet between the namespace and the root namespace from now on."""
        _ip("link", "set", self.root_dev, "down")
        self.is_cut = True

    def restore(self) -> None:
        """Let packets through again."""
        _ip("link", "set", self.root_dev, "up")
        self.is_cut = False

    def pids(self) -> list[int]:
        """Processes running inside the namespace."""
        listed = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True, timeout=30)
        return [int(p) for p in listed.stdout.split()] if listed.returncode == 0 else []

    def remove(self) -> None:
        """Kill what still runs inside (started by this test), delete the veth pair and the namespace."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _ip("link", "del", self.root_dev, check=False)  # deletes its peer too
        _ip("netns", "del", self.netns, check=False)

    def __enter__(self) -> VethHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class VethBalancer(LoadBalancer):
    """A :class:`LoadBalancer` listening on ``host`` (a veth address) instead of 127.0.0.1."""

    def __init__(self, host: str, targets: Sequence[Target], *, name: str = "veth-balancer") -> None:
        super().__init__(targets, name=name)
        self.host = host

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _start(self) -> None:
        import asyncio

        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]


@dataclass
class VethEntry:
    """Where an agent in a namespace registers and connects (``harness.Enrollable``): the listen and
    enroll balancers' twins on the root side of its veth pair."""

    listen: VethBalancer
    enroll: VethBalancer
    ca_cert: Path

    @property
    def address(self) -> str:
        return self.listen.address

    @property
    def ports(self) -> dict[str, int]:
        return {"listen": self.listen.port, "enroll": self.enroll.port}


class NetnsAgent(Agent):
    """``fleetops-agent run`` inside a :class:`VethHost`'s namespace (registered from the root one)."""

    def __init__(self, root: Path, name: str, host: VethHost) -> None:
        super().__init__(root, name)
        self.veth = host

    def start(
        self, wait_connected: bool = True, env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> None:
        if self.process is not None:
            self.process.stop()
        argv = [PYTHON, "-m", "fleetops.agent", "--state-dir", str(self.state_dir), "run", *(args or [])]
        self.process = Process(f"agent {self.name}", [*self.veth.prefix, *argv], env=env)
        if wait_connected:
            self.wait_connected()


@contextlib.contextmanager
def veth_hosts(count: int) -> Iterator[list[VethHost]]:
    """``count`` :class:`VethHost` on distinct subnets, removed on exit; skips when not possible here."""
    require_netns()
    hosts: list[VethHost] = []
    try:
        for _ in range(count):
            hosts.append(VethHost.new(avoid={h.n for h in hosts}))
        yield hosts
    finally:
        for host in hosts:
            host.remove()
