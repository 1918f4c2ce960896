"""An agent of the previous release keeps working with this controller (docs/install.md#compatibility).

The previous agent is built from git history: the fleetops wheel of PREVIOUS_RELEASE (the last
commit before agent releases changed the wire) installed into a directory of its own that comes
first on the agent's PYTHONPATH, so ``fleetops.agent`` and the generated ``fleetops.v1`` it runs
are that commit's (checked), while its dependencies are this environment's. Needs the repository's
history (a shallow clone skips this test, saying so).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from fake_debs import deb
from harness import Agent, Controller, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
#: Move this forward when a release changes the wire again: one minor version back must keep working.
PREVIOUS_RELEASE = "a8a282b"


@pytest.fixture(scope="module")
def previous_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the previous release's ``fleetops`` package, for PYTHONPATH."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    tmp = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_RELEASE], capture_output=True, check=False
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {PREVIOUS_RELEASE} is not in this clone (shallow?): {archive.stderr.decode()[:200]}")
    started = time.monotonic()
    source = tmp / "source"
    (tmp / "source.tar").write_bytes(archive.stdout)
    with tarfile.open(tmp / "source.tar") as tar:
        tar.extractall(source, filter="data")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp / "wheel"), str(source)], check=True, timeout=300)
    site = tmp / "site"
    wheel = next((tmp / "wheel").glob("fleetops-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300)
    print(f"previous agent ({PREVIOUS_RELEASE}) built in {time.monotonic() - started:.1f}s")
    return site


def test_the_previous_agent_connects_runs_commands_and_is_told_to_upgrade_for_updates(
    previous_agent: Path, controller: Controller, tmp_path: Path
) -> None:
    env = {"PYTHONPATH": str(previous_agent)}
    probe = subprocess.run(
        [sys.executable, "-c", "import fleetops.agent, fleetops.v1.agent_pb2 as a; "
         "print(fleetops.agent.__file__, hasattr(a, 'ReleaseChunk'))"],
        capture_output=True, text=True, env={**env, "PATH": "/usr/bin:/bin"}, check=True,
    )  # fmt: skip
    assert probe.stdout.split() == [str(previous_agent / "fleetops" / "agent" / "__init__.py"), "False"]

    activation_id, code = controller.create_activation()
    agent = Agent(tmp_path, "old-agent")
    agent.register(controller, activation_id, code)
    agent.start(env=env)
    try:
        wait_until(lambda: controller.host_status("old-agent") == "online", 30, "old-agent online")
        ran = controller.opsctl("run", "--host", "old-agent", "--", "echo", "old-agent-works")
        assert "old-agent-works" in ran.stdout
        listed = controller.opsctl("hosts", "list").stdout
        assert "old-agent" in listed and "AGENT" in listed
        # It does not know the update task: the invocation fails saying so, and the agent goes on.
        package = tmp_path / "fleetops-agent_0.1.1-1_amd64.deb"
        package.write_bytes(deb("0.1.1-1", "amd64"))
        add = subprocess.run(
            [sys.executable, "-m", "fleetops.controller", "release", "add", "--state-dir", str(controller.state_dir),
             str(package)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert add.returncode == 0, add.stderr
        update = controller.opsctl("agent", "update", "--host", "old-agent", check=False)
        assert update.returncode == 1
        assert "does not implement the task 'agent.update'; upgrade the agent" in update.stdout + update.stderr
        ran = controller.opsctl("run", "--host", "old-agent", "--", "echo", "still-works")
        assert "still-works" in ran.stdout
    finally:
        agent.stop()
