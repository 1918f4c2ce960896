"""Commands on Windows: scripts run by Windows PowerShell, trees killed with taskkill.

Written for real but only unit-tested here (by the argv and flags it builds): CI has no Windows.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from fleetops.agent.commands.platform import (
    WINDOWS_REBOOT_EXIT_CODE,
    CommandNotStarted,
    CommandPlatform,
    Launch,
    check_what_to_run,
)
from fleetops.v1 import agent_pb2

# subprocess only defines these on Windows.
CREATE_NEW_PROCESS_GROUP = 0x00000200
CTRL_BREAK_EVENT = 1

POWERSHELL = "powershell.exe"
# -File, not "-Command -" with the script on stdin: PowerShell reads stdin line by line as if typed,
# so multi-line statements need blank-line terminators and a parse error does not stop the script.
POWERSHELL_OPTIONS = ("-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File")

# The variables Windows programs need to work at all; the rest of the agent's environment stays out.
BASE_ENVIRONMENT = (
    "SystemRoot",
    "SystemDrive",
    "windir",
    "ComSpec",
    "PATH",
    "PATHEXT",
    "TEMP",
    "TMP",
    "USERPROFILE",
    "USERNAME",
    "USERDOMAIN",
    "COMPUTERNAME",
    "APPDATA",
    "LOCALAPPDATA",
    "ProgramData",
    "ProgramFiles",
    "ProgramFiles(x86)",
    "CommonProgramFiles",
    "PSModulePath",
    "NUMBER_OF_PROCESSORS",
    "PROCESSOR_ARCHITECTURE",
)

UTF8_BOM = b"\xef\xbb\xbf"


def kill_tree_argv(pid: int) -> list[str]:
    """taskkill ends the whole tree (/T), forcibly (/F): Windows has no process-group SIGKILL."""
    return ["taskkill", "/T", "/F", "/PID", str(pid)]


class WindowsPlatform(CommandPlatform):
    reboot_exit_code = WINDOWS_REBOOT_EXIT_CODE
    script_suffix = ".ps1"

    def __init__(
        self,
        *,
        script_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        runner: Callable[..., Any] = subprocess.run,
        send_signal: Callable[[int, int], None] = os.kill,
        powershell: str = POWERSHELL,
    ) -> None:
        super().__init__(script_dir)
        self._environ = os.environ if environ is None else environ
        self._runner = runner
        self._send_signal = send_signal
        self._powershell = powershell

    def script_owner(self, spec: agent_pb2.RunInvocation) -> tuple[int, int] | None:
        _refuse_run_as(spec)
        return None

    def script_bytes(self, spec: agent_pb2.RunInvocation) -> bytes:
        # Windows PowerShell 5.1 reads a .ps1 without a BOM in the ANSI code page: mark UTF-8 text.
        script = bytes(spec.script)
        if script.startswith(UTF8_BOM) or script.isascii():
            return script
        try:
            script.decode("utf-8")
        except UnicodeDecodeError:
            return script  # some other encoding: pass it on untouched
        return UTF8_BOM + script

    def build_launch(self, spec: agent_pb2.RunInvocation, script_path: Path | None) -> Launch:
        check_what_to_run(spec)
        _refuse_run_as(spec)
        if spec.argv:
            argv = tuple(spec.argv)
        else:
            assert script_path is not None, "a script invocation needs its script file"
            argv = (self._powershell, *POWERSHELL_OPTIONS, str(script_path))
        # os.environ is case-insensitive on Windows; a plain mapping in tests is not.
        lowered = {key.lower(): value for key, value in self._environ.items()}
        env = {name: lowered[name.lower()] for name in BASE_ENVIRONMENT if name.lower() in lowered}
        env.update(spec.env)
        # A new process group so CTRL_BREAK reaches the command and its children, not the agent. No
        # CREATE_NO_WINDOW: a console-less child could not receive CTRL_BREAK at all.
        options = {"creationflags": CREATE_NEW_PROCESS_GROUP}
        return Launch(argv=argv, cwd=spec.cwd or None, env=env, options=options)

    def terminate_group(self, pid: int) -> None:
        # Best effort: CTRL_BREAK only reaches processes sharing the agent's console (none when the
        # agent runs as a service); the kill after the grace period is what ends them for sure.
        try:
            self._send_signal(pid, CTRL_BREAK_EVENT)
        except OSError:
            pass

    def kill_group(self, pid: int) -> None:
        self._runner(kill_tree_argv(pid), capture_output=True, check=False, timeout=60)

    def group_alive(self, pid: int) -> bool:
        try:
            return psutil.Process(pid).is_running()
        except psutil.NoSuchProcess:
            return False


def _refuse_run_as(spec: agent_pb2.RunInvocation) -> None:
    if spec.run_as:
        raise CommandNotStarted(f"cannot run as {spec.run_as}: running as another user is not supported on Windows yet")
