"""The agent's Debian package, built by scripts/build_agent_deb.py, installed on this machine and used.

The package is built once per test session (for this machine's python3 only, to keep the download
small; pip's own cache keeps it across sessions). The contents test needs dpkg-deb and PyPI (or the
configured index). The install test changes the machine: ``dpkg -i`` as root, a real controller from
the fixtures, the installed agent started the way its installed unit says (ExecStart, User,
Environment, EnvironmentFile: systemd is not PID 1 here), enrolled with an activation and given a
command through opsctl; ``dpkg --purge`` at the end, checked to leave nothing behind. It runs only
as root on Debian/Ubuntu and skips elsewhere, unless FLEETOPS_REQUIRE_DEB=1 (CI) makes it required.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian_host import (
    CONTROLLER_ONLY,
    ENV_FILE,
    PACKAGE,
    ROOT,
    STATE,
    UNIT,
    VENV,
    WANTS,
    dpkg,
    host_python,
    installed,
    service_command,
    skip_or_fail,
)

from harness import Controller, Process, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="session")
def agent_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("dpkg-deb") is None:
        skip_or_fail("dpkg-deb is not installed")
    out = tmp_path_factory.mktemp("deb")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_agent_deb.py"), "--out", str(out), "--python", host_python()],
        capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"build_agent_deb.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    print(f"agent .deb built in {time.monotonic() - started:.1f}s")
    return Path(result.stdout.strip().splitlines()[-1])


def deb_fields(deb: Path) -> dict[str, str]:
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^([A-Za-z-]+): (.*)$", info, re.MULTILINE))


def test_package_metadata_and_contents(agent_deb: Path) -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    fields = deb_fields(agent_deb)
    assert fields["Package"] == PACKAGE
    assert fields["Version"] == f"{version}-1"
    assert fields["Architecture"] == arch  # binary wheels (grpcio, cryptography, psutil) inside
    assert fields["Depends"] == "python3 (>= 3.11), python3-venv"

    info = subprocess.run(["dpkg-deb", "-I", str(agent_deb)], capture_output=True, text=True, check=True).stdout
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+(\*\s+)?{script}\b", info, re.MULTILINE), info
    conffiles = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(agent_deb)], capture_output=True, check=True
    ).stdout  # a tar: look for the conffile's name in it
    assert str(ENV_FILE).encode() in conffiles

    listing = subprocess.run(["dpkg-deb", "-c", str(agent_deb)], capture_output=True, text=True, check=True).stdout
    entries = {line.split()[-1].removeprefix("."): line.split()[:2] for line in listing.splitlines()}
    assert entries[str(UNIT)] == ["-rw-r--r--", "root/root"]
    assert entries[str(ENV_FILE)] == ["-rw-r--r--", "root/root"]
    wheels = [Path(p).name for p in entries if p.startswith("/usr/share/fleetops-agent/wheels/") and p.endswith(".whl")]
    names = {re.split(r"-\d", w, maxsplit=1)[0].lower() for w in wheels}
    assert f"fleetops-{version}-py3-none-any.whl" in wheels
    assert {"grpcio", "protobuf", "cryptography", "psutil", "asyncssh", "pyyaml"} <= names
    assert not names & set(CONTROLLER_ONLY), f"controller dependencies in the agent package: {names}"
    # Files only under the package's own paths (the virtualenv and the state are postinst's).
    files = [path for path, (mode, _) in entries.items() if not mode.startswith("d")]
    owned = ("/usr/share/fleetops-agent/", "/usr/share/doc/fleetops-agent/", "/etc/fleetops/", str(UNIT))
    assert all(path.startswith(owned) for path in files), listing


@pytest.fixture
def installed_package(agent_deb: Path) -> Iterator[Path]:
    """The package installed with dpkg -i; purged at teardown (whatever the test did)."""
    if os.name != "posix" or os.geteuid() != 0:
        skip_or_fail("not running as root")
    missing = [tool for tool in ("dpkg", "dpkg-query", "deb-systemd-helper") if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"missing {', '.join(missing)}")
    python = host_python()
    if not python or tuple(int(x) for x in python.split(".")) < (3, 11):
        skip_or_fail(f"python3 is {python or 'missing'}")
    venv_status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", "python3-venv"],
                                 capture_output=True, text=True, check=False).stdout  # fmt: skip
    if venv_status != "installed":
        skip_or_fail("python3-venv is not installed")
    if installed() or STATE.exists() or VENV.exists():
        # Never touch a real installation: this test purges what it installed.
        pytest.fail(f"{PACKAGE} is installed here already (or {STATE} / {VENV} exist): remove it first")
    result = dpkg("-i", str(agent_deb))
    try:
        assert result.returncode == 0, f"dpkg -i failed:\n{result.stdout}\n{result.stderr}"
        assert "not installed" not in result.stderr, result.stderr  # pip's dependency warnings stay off
        yield agent_deb
    finally:
        purged = dpkg("--purge", PACKAGE)
        assert purged.returncode == 0, f"dpkg --purge failed:\n{purged.stdout}\n{purged.stderr}"


def test_installed_agent_enrolls_and_runs_a_command(
    installed_package: Path, controller: Controller, tmp_path: Path
) -> None:
    # What postinst made: the virtualenv without the controller's dependencies, the private state
    # directory, the unit enabled (the link a boot follows), the conffile.
    listed = subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout.lower()  # fmt: skip
    assert "fleetops==" in listed and "grpcio==" in listed
    assert not [name for name in CONTROLLER_ONLY if f"\n{name}==" in "\n" + listed], listed
    state = STATE.stat()
    assert (state.st_uid, state.st_gid, state.st_mode & 0o7777) == (0, 0, 0o700)
    assert WANTS.is_symlink() and WANTS.resolve() == UNIT.resolve()
    assert ENV_FILE.exists()
    conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert str(ENV_FILE) in conffiles

    argv, env, user = service_command(UNIT)
    assert argv[0] == str(VENV / "bin" / "fleetops-agent") and user == "root"
    state_dir = argv[argv.index("--state-dir") + 1]
    assert state_dir == str(STATE)

    activation_id, code = controller.create_activation("--limit", "1", tags={"env": "pkg"})
    register = subprocess.run(
        [argv[0], "--state-dir", state_dir, "register", "--controller", controller.address,
         "--enroll-port", str(controller.ports["enroll"]), "--activation-id", activation_id,
         "--activation-code", code, "--ca-cert", str(controller.ca_cert), "--name", "pkg-host"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert register.returncode == 0, f"register failed:\n{register.stdout}\n{register.stderr}"

    agent = Process("packaged agent", argv, env={**env, "GRPC_VERBOSITY": "ERROR"}, inherit_env=False)
    try:
        agent.wait_for_line(r"connected to .* as host", timeout=60)
        wait_until(lambda: controller.host_status("pkg-host") == "online", 30, "pkg-host online")
        result = controller.opsctl("run", "--host", "pkg-host", "--", "sh", "-c", 'echo "from $0 as $(id -u)"')
        assert "from sh as 0" in result.stdout, result.stdout
        # The unit's KillSignal=SIGTERM: a clean stop.
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(30) == 0, agent.output()
    finally:
        agent.stop()


def test_remove_keeps_the_state_and_purge_leaves_nothing(installed_package: Path) -> None:
    """Installed, removed (state and conffile kept), installed again (enabled again), purged (all gone)."""
    (STATE / "agent.json").write_text("{}")  # stands in for a registration
    removed = dpkg("--remove", PACKAGE)
    assert removed.returncode == 0, removed.stderr
    assert not VENV.exists() and not UNIT.exists() and not WANTS.exists()
    assert (STATE / "agent.json").exists() and ENV_FILE.exists()  # remove keeps state and conffiles
    again = dpkg("-i", str(installed_package))
    assert again.returncode == 0, again.stderr
    assert WANTS.is_symlink() and (VENV / "bin" / "fleetops-agent").exists()
    purged = dpkg("--purge", PACKAGE)
    assert purged.returncode == 0, purged.stderr
    for path in (VENV, STATE, UNIT, ENV_FILE, ENV_FILE.parent, WANTS, Path("/usr/share/fleetops-agent")):
        assert not path.exists() and not path.is_symlink(), f"{path} left after purge"
    assert not installed()
