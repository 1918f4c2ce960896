"""One-line install, signed updates and rollback of the agent's Debian package, on this machine.

As root on Debian/Ubuntu (FLEETOPS_REQUIRE_DEB=1 makes it required, as in CI), like
test_agent_package.py: the host is this machine. Three packages are built once per module with
scripts/build_agent_deb.py (for this machine's python3 only): this checkout's version A, a version
B (``--version 0.1.1``) and a version C (``--version 0.1.2``) broken on purpose: its ``run`` exits
at start. The installed agent runs the way its unit says, under a loop that restarts it when it
exits, as systemd's ``Restart=always`` does (systemd is not PID 1 here).

One test walks the whole path, because each step starts from what the one before left on the host:
the one-line command installs A and registers (twice: the second changes nothing), a command runs;
``opsctl agent update`` moves the host to B; an update to C rolls back to B; C changed in the
controller's object store is refused by the host's signature check. Purged at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian_host import (
    PACKAGE,
    ROOT,
    STATE,
    SYSTEMD_ENV,
    UNIT,
    VENV,
    dpkg,
    host_python,
    installed,
    service_command,
    skip_or_fail,
)

from harness import Controller, Process, run, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

VERSION_B, VERSION_C = "0.1.1", "0.1.2"
BROKEN = '        if args.command == "run":\n'


def build(out: Path, source: Path = ROOT, version: str = "") -> Path:
    started = time.monotonic()
    argv = [
        sys.executable,
        str(source / "scripts" / "build_agent_deb.py"),
        "--out",
        str(out),
        "--python",
        host_python(),
    ]
    result = subprocess.run(
        [*argv, *(["--version", version] if version else [])], capture_output=True, text=True, timeout=540, check=False
    )
    assert result.returncode == 0, f"build_agent_deb.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    print(f"agent .deb {version or 'A'} built in {time.monotonic() - started:.1f}s")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A (this checkout), B (0.1.1) and C (0.1.2, whose ``run`` exits at start)."""
    if shutil.which("dpkg-deb") is None:
        skip_or_fail("dpkg-deb is not installed")
    out = tmp_path_factory.mktemp("debs")
    broken = tmp_path_factory.mktemp("broken") / "source"
    shutil.copytree(ROOT, broken, ignore=shutil.ignore_patterns(".git", ".venv", "dist", "__pycache__", "*.egg-info"))
    cli = broken / "agent" / "cli.py"
    assert cli.read_text().count(BROKEN) == 1
    cli.write_text(cli.read_text().replace(BROKEN, BROKEN + '            raise SystemExit("broken on purpose")\n'))
    return {"A": build(out), "B": build(out, version=VERSION_B), "C": build(out, broken, VERSION_C)}


@pytest.fixture
def clean_host() -> Iterator[None]:
    """Nothing of the agent on this machine before; whatever the test installed purged after."""
    if os.name != "posix" or os.geteuid() != 0:
        skip_or_fail("not running as root")
    if shutil.which("deb-systemd-helper") is None or shutil.which("curl") is None:
        skip_or_fail("deb-systemd-helper or curl is missing")
    if installed() or STATE.exists() or VENV.exists():
        pytest.fail(f"{PACKAGE} is installed here already (or {STATE} / {VENV} exist): remove it first")
    try:
        yield
    finally:
        # An update task still running after a failure (it outlives agents on purpose): ours, ended.
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if cmdline.read_bytes().startswith(str(VENV).encode()):
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        purged = dpkg("--purge", PACKAGE)
        assert purged.returncode == 0, f"dpkg --purge failed:\n{purged.stdout}\n{purged.stderr}"
        shutil.rmtree(STATE, ignore_errors=True)


class ServiceLoop:
    """The installed unit's ExecStart run again whenever it exits (systemd's Restart=always)."""

    def __init__(self) -> None:
        self.runs: list[Process] = []
        self.failed_starts: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                argv, env, _ = service_command(UNIT)
                process = Process("packaged agent", argv, env={**env, "GRPC_VERBOSITY": "ERROR"}, inherit_env=False)
            except OSError as exc:  # dpkg is replacing the unit or the virtualenv: systemd would fail the start
                self.failed_starts.append(str(exc))
            else:
                self.runs.append(process)
                while process.proc.poll() is None and not self._stopping.is_set():
                    time.sleep(0.2)
            self._stopping.wait(1)  # RestartSec (shortened)

    def output(self) -> str:
        return "\n---- restart ----\n".join(p.output() for p in self.runs)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(30)
        for process in self.runs:
            process.stop()


def installed_version() -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True).stdout


def host_agent_version(controller: Controller, name: str) -> str:
    for host in controller.hosts():
        if host["name"] == name and host.get("status") == "online":
            return str(host["inventory"].get("agentVersion") or host["inventory"].get("agent_version") or "")
    return ""


def opsctl_slow(controller: Controller, *args: str) -> subprocess.CompletedProcess[str]:
    """opsctl with time for an update: download, dpkg, restart, trial and perhaps a rollback."""
    return run([sys.executable, "-m", "fleetops.opsctl", "--profile", str(controller.profile), *args], timeout=300)


def add_release(controller: Controller, deb: Path) -> None:
    result = run(
        [sys.executable, "-m", "fleetops.controller", "release", "add", "--state-dir", str(controller.state_dir),
         str(deb)]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_one_line_install_then_update_rollback_and_refusal(
    packages: dict[str, Path], clean_host: None, controller: Controller
) -> None:
    add_release(controller, packages["A"])
    version_a = installed_version_of(packages["A"])

    # The one-line command, as an operator pastes it into a root shell or cloud-init.
    activation = controller.opsctl("activation", "create", "--limit", "1", "--print-install").stdout.strip()
    assert activation.count("\n") == 0 and "sha256sum -c" in activation, activation
    env = {**SYSTEMD_ENV, "HOME": "/root"}
    first = subprocess.run(["sh", "-c", activation], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    assert f"installed fleetops-agent {version_a}" in first.stdout and "registered as" in first.stdout, first.stdout
    assert installed_version() == version_a
    assert (STATE / "releases" / packages["A"].name).is_file()  # kept: the version to roll back to
    registration = (STATE / "agent.json").read_bytes()
    again = subprocess.run(["sh", "-c", activation], capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    assert "is installed already" in again.stdout and "nothing to do" in again.stdout, again.stdout
    assert (STATE / "agent.json").read_bytes() == registration and installed_version() == version_a

    # A command on the installed agent.
    name = json.loads(registration)["hostname"]
    service = ServiceLoop()
    try:
        wait_until(lambda: controller.host_status(name) == "online", 60, f"{name} online")
        ran = controller.opsctl("run", "--host", name, "--", "sh", "-c", "echo installed-by-one-line")
        assert "installed-by-one-line" in ran.stdout
        assert host_agent_version(controller, name) == version_a.rsplit("-", 1)[0]
        listed = controller.opsctl("hosts", "list").stdout
        assert "AGENT" in listed and version_a.rsplit("-", 1)[0] in listed

        # A -> B: downloaded over the link, verified, installed, the new agent reconnects.
        add_release(controller, packages["B"])
        started = time.monotonic()
        updated = opsctl_slow(controller, "agent", "update", "--host", name, "--version", VERSION_B)
        print(f"update A -> B took {time.monotonic() - started:.1f}s")
        assert updated.returncode == 0, f"{updated.stdout}\n{updated.stderr}\n{service.output()}"
        assert f"-> {VERSION_B}: the new agent connected" in updated.stdout, updated.stdout
        assert installed_version() == f"{VERSION_B}-1"
        wait_until(lambda: host_agent_version(controller, name) == VERSION_B, 60, "the host reporting B")

        # B -> C, whose agent exits at start: rolled back to B.
        add_release(controller, packages["C"])
        started = time.monotonic()
        broken = opsctl_slow(
            controller, "agent", "update", "--host", name, "--version", VERSION_C, "--reconnect-timeout", "20s"
        )
        print(f"update B -> C and rollback took {time.monotonic() - started:.1f}s")
        assert broken.returncode == 1, f"{broken.stdout}\n{broken.stderr}\n{service.output()}"
        assert f"rolled back to {VERSION_B}-1: agent {VERSION_C} did not connect within 20s" in broken.stdout + (
            broken.stderr
        ), broken.stdout
        assert "broken on purpose" in service.output()
        assert installed_version() == f"{VERSION_B}-1"
        wait_until(lambda: host_agent_version(controller, name) == VERSION_B, 60, "the host back on B")

        # C changed in the controller's store after it was signed: the host refuses it.
        stored = controller.state_dir / "objects" / "agent-releases" / packages["C"].name
        data = bytearray(stored.read_bytes())
        data[-100] ^= 0xFF
        stored.write_bytes(bytes(data))
        refused = opsctl_slow(
            controller, "agent", "update", "--host", name, "--version", VERSION_C, "--reconnect-timeout", "20s"
        )
        assert refused.returncode == 1, refused.stdout
        assert "refused: signature check failed for" in refused.stdout + refused.stderr, refused.stdout
        assert hashlib.sha256(bytes(data)).hexdigest() in refused.stdout + refused.stderr
        assert installed_version() == f"{VERSION_B}-1"
        assert not (STATE / "releases" / packages["C"].name).exists()
        ran = controller.opsctl("run", "--host", name, "--", "echo", "still-here")
        assert "still-here" in ran.stdout
    finally:
        service.stop()


def installed_version_of(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True).stdout.strip()
