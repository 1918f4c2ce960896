"""opsctl run against real controller and agent processes: targeting, rate control, timeouts, output."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from events import StoredEvent, of_type, wait_for_events
from harness import PYTHON, Agent, Controller, start_fleet, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def controller(module_controller: Controller) -> Controller:
    return module_controller


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("run-agents"),
        {
            "web-1": {"role": "web", "env": "prod"},
            "web-2": {"role": "web", "env": "prod"},
            "web-3": {"role": "web", "env": "prod"},
            "api-1": {"role": "api", "env": "prod"},
            "db-1": {"role": "db", "env": "prod"},
        },
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def opsctl_run(controller: Controller, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return controller.opsctl("run", *args, check=check)


def results(controller: Controller, *args: str) -> dict[str, dict]:
    """Run with -o json; one JSON document per host."""
    result = opsctl_run(controller, "-o", "json", *args)
    docs = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {d["host"]: d for d in docs} | {"__rc__": {"rc": result.returncode, "stderr": result.stderr}}


def test_selector_picks_hosts_and_output_is_grouped(controller: Controller, fleet: dict[str, Agent]) -> None:
    result = opsctl_run(controller, "--target", "role=web", "--", "echo", "hello from web")
    assert result.returncode == 0, result.stderr
    assert "3 hosts matched: web-1, web-2, web-3" in result.stdout
    assert "── 3 hosts (web-1, web-2, web-3)" in result.stdout
    assert "hello from web" in result.stdout
    assert "success on 3 hosts" in result.stdout

    docs = results(controller, "--target", "role in (api,db)", "--", "sh", "-c", "echo $((6*7)); exit 3")
    assert docs.pop("__rc__")["rc"] == 1  # not every host succeeded
    assert sorted(docs) == ["api-1", "db-1"]
    assert all(d["state"] == "failed" and d["exit_code"] == 3 and d["stdout"] == "42\n" for d in docs.values())


def test_bad_input_is_refused_clearly(controller: Controller, fleet: dict[str, Agent]) -> None:
    no_target = opsctl_run(controller, "--", "true")
    assert no_target.returncode == 2 and "no target given" in no_target.stderr
    bad = opsctl_run(controller, "--target", "role=web", "--max-concurrency", "lots", "--", "true")
    assert bad.returncode == 2 and "max-concurrency" in bad.stderr and "Traceback" not in bad.stderr
    none = opsctl_run(controller, "--target", "role=nothing", "--", "true")
    assert none.returncode == 3 and "no host matches" in none.stderr


def test_max_concurrency_is_never_exceeded(controller: Controller, fleet: dict[str, Agent], tmp_path: Path) -> None:
    log = tmp_path / "overlap.log"
    script = f'echo "start $(date +%s.%N)" >> {log}; sleep 0.6; echo "end $(date +%s.%N)" >> {log}'
    result = opsctl_run(controller, "--all", "--max-concurrency", "2", "--", "sh", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    events = sorted((float(t), kind) for kind, t in (line.split() for line in log.read_text().splitlines()))
    running = peak = 0
    for _, kind in sorted(events, key=lambda e: (e[0], e[1] == "start")):
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert len(events) == 10
    assert peak == 2  # never more than 2 at once, and the limit was actually used


def test_max_errors_stops_new_sends(controller: Controller, fleet: dict[str, Agent]) -> None:
    docs = results(controller, "--all", "--max-concurrency", "1", "--max-errors", "1", "--", "false")
    assert docs.pop("__rc__")["rc"] == 1
    states = sorted(d["state"] for d in docs.values())
    # With max-errors 1 the second error stops new sends: 2 failed, the rest never started.
    assert states == ["failed", "failed", "not_started", "not_started", "not_started"]
    assert all("max-errors" in d["reason"] for d in docs.values() if d["state"] == "not_started")

    # The command's event and one per failed invocation, from the transactions that ended them.
    counts = {"failed": 2, "not_started": 3}

    def this_command(e: StoredEvent) -> bool:
        return e.type == "fleetops.command.failed" and e.data["what"] == "false" and e.data["counts"] == counts

    events = wait_for_events(controller.database_url or controller.state_dir, lambda es: any(map(this_command, es)))
    (ended,) = [e for e in events if this_command(e)]
    command_id = ended.data["command_id"]
    assert ended.subject == f"command/{command_id}" and ended.data["status"] == "failed"
    failed = [e for e in of_type(events, "fleetops.invocation.failed") if e.data["command_id"] == command_id]
    hosts = sorted(h for h, d in docs.items() if d["state"] == "failed")
    assert sorted(e.host or "" for e in failed) == hosts and all(e.data["exit_code"] == 1 for e in failed)
    assert [e.type for e in events if e.data.get("command_id") == command_id].count("fleetops.command.failed") == 1


def test_timeout_kills_the_whole_process_group(controller: Controller, fleet: dict[str, Agent], tmp_path: Path) -> None:
    marker = tmp_path / "pids"
    script = f"sleep 300 & echo $! >> {marker}; sleep 301 & echo $! >> {marker}; wait"
    docs = results(controller, "--host", "web-1", "--timeout", "1s", "--", "sh", "-c", script)
    assert docs["web-1"]["state"] == "timed_out" and "timed out" in docs["web-1"]["reason"]
    pids = [int(p) for p in marker.read_text().split()]
    assert len(pids) == 2
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_cancel_stops_running_invocations(controller: Controller, fleet: dict[str, Agent]) -> None:
    started = opsctl_run(controller, "--target", "role=web", "--detach", "--", "sleep", "300", check=True)
    command_id = started.stdout.strip().splitlines()[-1]
    wait_until(
        lambda: (
            json.loads(controller.opsctl("command", "show", command_id, "-o", "json").stdout)["command"]["counts"].get(
                "running"
            )
            == 3
        ),
        20,
        "three running invocations",
    )
    controller.opsctl("run", "cancel", command_id)
    watched = controller.opsctl("run", "watch", command_id, "-o", "json", check=False)
    docs = [json.loads(line) for line in watched.stdout.splitlines() if line.startswith("{")]
    assert watched.returncode == 1
    assert sorted(d["state"] for d in docs) == ["cancelled"] * 3
    listing = controller.opsctl("run", "list").stdout
    assert command_id in listing and "cancelled" in listing


def test_offline_host_becomes_undeliverable(controller: Controller, fleet: dict[str, Agent]) -> None:
    fleet["db-1"].stop()
    try:
        wait_until(lambda: controller.host_status("db-1") == "offline", 10, "db-1 offline")
        docs = results(controller, "--all", "--delivery-timeout", "2s", "--", "true")
        docs.pop("__rc__")
        assert docs["db-1"]["state"] == "undeliverable" and "offline" in docs["db-1"]["reason"]
        assert all(d["state"] == "success" for name, d in docs.items() if name != "db-1")
    finally:
        fleet["db-1"].start()


@pytest.mark.skipif(os.geteuid() != 0, reason="--as needs the agent to run as root")
def test_run_as_another_user(controller: Controller, fleet: dict[str, Agent]) -> None:
    user = "fleetops-runas"
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True)
    # Repeated: switching users forks the agent, which once crashed the child intermittently.
    for _ in range(5):
        docs = results(controller, "--host", "api-1", "--as", user, "--", "sh", "-c", "id -un; echo $HOME")
        assert docs["api-1"]["state"] == "success", docs
        assert docs["api-1"]["stdout"].split() == [user, f"/home/{user}"]
    bad = results(controller, "--host", "api-1", "--as", "no-such-user-here", "--", "true")
    assert bad["api-1"]["state"] == "failed" and "no-such-user-here" in bad["api-1"]["reason"]


def run_script(controller: Controller, script: Path, *args: str) -> tuple[dict, str]:
    """``opsctl run --script`` on web-1: its JSON result and its stdout as ``opsctl run output`` gives it."""
    docs = results(controller, "--host", "web-1", "--script", str(script), *args)
    command_id = json.loads(controller.opsctl("command", "list", "-o", "json").stdout)[0]["id"]
    return docs["web-1"], controller.opsctl("run", "output", command_id, "web-1").stdout


def test_a_script_runs_from_the_agents_private_scripts_directory(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    script = tmp_path / "s.sh"
    script.write_text('echo "running $0"\necho to-stderr >&2\nexit 3\n')
    scripts = fleet["web-1"].state_dir / "scripts"
    for _ in range(2):  # the second time after someone deleted the directory under the running agent
        result, stdout = run_script(controller, script)
        assert (result["state"], result["exit_code"]) == ("failed", 3), result
        assert result["stderr_bytes"] == len("to-stderr\n")
        ran = Path(stdout.removeprefix("running ").strip())
        assert ran.parent == scripts and ran.suffix == ".sh"
        assert not ran.exists()  # removed once the command exited
        assert scripts.stat().st_mode & 0o777 == 0o700
        scripts.rmdir()


@pytest.mark.skipif(os.geteuid() != 0, reason="--as needs the agent to run as root")
def test_a_script_runs_as_another_user(controller: Controller, fleet: dict[str, Agent], tmp_path: Path) -> None:
    user = "fleetops-runas"
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True)
    script = tmp_path / "who.sh"
    script.write_text("id -un\n")
    # The agent's state directory is 0700: the file goes where that user can read it, as theirs.
    result, stdout = run_script(controller, script, "--as", user)
    assert result["state"] == "success", result
    assert stdout == f"{user}\n"


def test_large_binary_output_round_trips_byte_exact(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(24 * 1024 * 1024) + b"\x00\xff\xfe tail")
    docs = results(controller, "--host", "web-2", "--", "cat", str(blob))
    assert docs["web-2"]["state"] == "success"
    assert docs["web-2"]["stdout_bytes"] == blob.stat().st_size and docs["web-2"]["truncated"] is True
    command_id = json.loads(controller.opsctl("command", "list", "-o", "json").stdout)[0]["id"]
    # the object store's copy, and the same bytes through opsctl run output
    stored = controller.state_dir / "objects" / "commands" / command_id / "web-2" / "stdout"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(blob.read_bytes()).hexdigest()
    raw = subprocess.run(
        [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "run", "output", command_id, "web-2"],
        capture_output=True,
        timeout=120,
        env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
    )
    assert raw.returncode == 0 and hashlib.sha256(raw.stdout).digest() == hashlib.sha256(blob.read_bytes()).digest()


def test_progress_bar_on_a_terminal(controller: Controller, fleet: dict[str, Agent]) -> None:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "fleetops.opsctl",
            "--profile",
            str(controller.profile),
            "run",
            "--target",
            "role=web",
            "--max-concurrency",
            "1",
            "--",
            "sh",
            "-c",
            "sleep 0.3; echo tty",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal closed when opsctl exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(60) == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert "done" in screen and "pending" in screen and "\r" in screen  # the redrawn progress line
    assert "── 3 hosts (web-1, web-2, web-3)" in screen and "tty" in screen
