"""``fleetops-agent update``: the agent task behind ``opsctl agent update`` (docs/install.md#updating-agents).

Run by the agent as a child process of its own program (agent/commands/tasks.py), in a process
group of its own, so it lives on when the agent it replaces is stopped. Steps:

1. pick this host's release from the request (by dpkg architecture); nothing to do when it is
   the installed one;
2. download it over the host's mTLS link and verify the controller's signature over the digest of
   the bytes received; keep the running version's package to roll back to (kept by the one-line
   installer in ``STATE/releases``, else downloaded and verified the same way). A package that
   fails the check is refused: nothing is installed;
3. ``dpkg -i`` the new package, restart the agent (under systemd the package's maintainer scripts
   stop and start the unit; elsewhere the task stops the agent that started it and the service
   manager starts the new one), and wait for the new version to connect (``trial.py``);
4. when it has not connected within the reconnect timeout: ``dpkg -i`` the previous package,
   restart, and report the rollback.

The outcome is its stdout (for operators) and its exit status: 0 updated (or already there), 1
refused, failed or rolled back. Since the agent that adopts this process cannot wait for it, the
status and a one-line reason also go to ``FLEETOPS_TASK_STATUS`` (executor.adopt reads it).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from fleetops.agent.commands.tasks import STATUS_ENV
from fleetops.agent.state import AgentState
from fleetops.agent.update import debian
from fleetops.agent.update.download import DownloadFailed, download_release
from fleetops.agent.update.trial import Verdict, decide, read_marker
from fleetops.common.errors import FleetopsError
from fleetops.common.release_signature import ReleaseRefused

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
#: Releases kept in STATE/releases besides the installed one and the one before it: none.
RELEASES_DIR = "releases"


class UpdateEnded(Exception):
    """The update stopped with ``exit_code`` and ``reason`` (what operators see)."""

    def __init__(self, exit_code: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


def read_request(environ: dict[str, str] | None = None) -> dict[str, Any]:
    text = (environ if environ is not None else os.environ).get("FLEETOPS_TASK_REQUEST", "")
    try:
        request = json.loads(text)
    except ValueError:
        raise UpdateEnded(1, "the update request is not JSON; upgrade the controller and the agent together") from None
    if not isinstance(request, dict) or not isinstance(request.get("releases"), dict):
        raise UpdateEnded(1, "the update request names no releases")
    return request


def restart_agent(parent_pid: int, state_dir: Path) -> None:
    """Make the service manager run the newly installed agent.

    Under systemd the package's prerm stopped the unit and its postinst started it again. Elsewhere
    (launchd, a container's supervisor, the tests) stop the agent process: the one that started
    this task while it is still our parent, or the one the run marker names. Its service manager
    starts the installed version (Restart=always, KeepAlive).
    """
    if Path("/run/systemd/system").is_dir():
        return
    pids = set()
    if os.getppid() == parent_pid:
        pids.add(parent_pid)
    marker = read_marker(state_dir)
    if marker is not None and marker.pid not in (os.getpid(), 1) and _is_agent(marker.pid):
        pids.add(marker.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def _is_agent(pid: int) -> bool:
    """Whether ``pid`` is a fleetops agent (a stale marker's pid may belong to anything by now)."""
    try:
        return b"fleetops" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def wait_for(state_dir: Path, version: str, switched_at: float, timeout: float) -> bool:
    """Whether an agent of ``version`` connected after ``switched_at`` within ``timeout`` seconds."""
    deadline = switched_at + timeout
    while True:
        verdict = decide(read_marker(state_dir), version, switched_at, time.time(), deadline)
        if verdict is not Verdict.WAITING:
            return verdict is Verdict.SWITCHED
        time.sleep(POLL_INTERVAL)


def prune(directory: Path, keep: set[str]) -> None:
    for path in directory.glob("fleetops-agent_*.deb"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def update(state_dir: Path, request: dict[str, Any], parent_pid: int) -> str:
    """Run the update; the line to report on success.

    Raises:
        UpdateEnded: refused, failed or rolled back (exit status 1).
    """
    identity = AgentState(state_dir).load()
    current = debian.installed_version()
    arch = debian.architecture()
    wanted = request["releases"].get(arch)
    if not wanted:
        raise UpdateEnded(1, f"version {request.get('version')} has no release for {arch}")
    current_file = debian.file_name(current, arch)
    if wanted == current_file:
        return f"fleetops-agent {current} is installed already; nothing to do"
    releases = state_dir / RELEASES_DIR
    print(f"downloading {wanted} over the controller link", flush=True)
    try:
        new_path, manifest = download_release(identity, wanted, releases)
        print(f"verified {wanted}: sha256 {manifest.sha256}, signed by {manifest.key_id}", flush=True)
        previous = releases / current_file
        if not previous.is_file():  # the one-line installer keeps it; a host installed by hand may not
            print(f"fetching {current_file} to roll back to", flush=True)
            previous, _ = download_release(identity, current_file, releases)
    except ReleaseRefused as exc:
        raise UpdateEnded(1, f"refused: {exc}") from None
    except DownloadFailed as exc:
        raise UpdateEnded(1, f"not updated: {exc}") from None
    timeout = float(request.get("reconnect_timeout_seconds") or 120)
    switched_at = time.time()
    try:
        debian.install(new_path)
    except debian.InstallFailed as exc:
        print(f"{exc}; putting {current} back", flush=True)
        debian.install(previous)
        raise UpdateEnded(1, f"rolled back to {current}: installing {manifest.version} failed: {exc}") from None
    print(f"installed {wanted}; restarting the agent, waiting {timeout:.0f}s for it to connect", flush=True)
    restart_agent(parent_pid, state_dir)
    if wait_for(state_dir, manifest.version, switched_at, timeout):
        prune(releases, {new_path.name, previous.name})
        return f"updated {current} -> {manifest.version}: the new agent connected"
    print(f"agent {manifest.version} did not connect within {timeout:.0f}s; rolling back to {current}", flush=True)
    rolled_at = time.time()
    debian.install(previous)
    restart_agent(parent_pid, state_dir)
    old_version = debian.installed_version().rsplit("-", 1)[0]
    back = wait_for(state_dir, old_version, rolled_at, timeout)
    new_path.unlink(missing_ok=True)  # the failed one; the installed one and its predecessor stay
    note = "" if back else f" (and {old_version} has not connected yet either)"
    raise UpdateEnded(
        1, f"rolled back to {current}: agent {manifest.version} did not connect within {timeout:.0f}s{note}"
    )


def main(state_dir: Path) -> int:
    """The task's entry point; its exit status (0 updated, 1 not)."""
    parent_pid = os.getppid()
    status_path = os.environ.get(STATUS_ENV, "")
    try:
        request = read_request()
        line = update(state_dir, request, parent_pid)
        code, reason = 0, ""
        print(line, flush=True)
    except UpdateEnded as exc:
        code, reason = exc.exit_code, exc.reason
    except (debian.NotInstalledAsPackage, debian.InstallFailed) as exc:
        code, reason = 1, str(exc)
    except FleetopsError as exc:
        code, reason = 1, exc.message
    if reason:
        print(reason, file=sys.stderr, flush=True)
    if status_path:
        Path(status_path).write_text(json.dumps({"exit_code": code, "reason": reason}))
    return code
