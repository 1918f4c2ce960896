"""README.md's walkthrough, in order, as a newcomer types it.

The commands come from README.md itself (the block after "It prints what to type next"), so a
walkthrough edited in the README is the walkthrough tested. The system is started the way the
README says (``scripts/dev.sh``, with a private state directory, ports and profile); each line runs
in bash with the virtualenv activated, as in the README's second terminal. The session line runs on
a real pseudo-terminal, where a newcomer types a command and ``exit``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
from pathlib import Path

import pytest

from harness import BASE_ENV, Process
from terminal import PtyProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def walkthrough() -> list[str]:
    """The command lines of README's "what to type next" block, comments dropped, in order."""
    text = README.read_text()
    start = text.index("It prints what to type next")
    match = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert match, "README.md: no ```sh block after 'It prints what to type next'"
    lines = []
    for raw in match.group(1).splitlines():
        if shlex.split(raw, comments=True):
            lines.append(re.sub(r"\s+#[^'\"]*$", "", raw).strip())
    return lines


def test_the_walkthrough_block_is_what_this_test_expects() -> None:
    lines = walkthrough()
    assert lines[0] == ". .venv/bin/activate"
    assert any(line.startswith("opsctl session ") for line in lines)


def test_readme_walkthrough_against_scripts_dev_sh(tmp_path: Path) -> None:
    config = tmp_path / "config"
    home = tmp_path / "home"  # opsctl ssh-config --install writes ~/.ssh: never the machine's own
    home.mkdir()
    env = {**BASE_ENV, "FLEETOPS_CONFIG_DIR": str(config), "HOME": str(home)}
    dev = Process(
        "dev.sh",
        [
            "bash",
            "scripts/dev.sh",
            "--state-dir",
            str(tmp_path / "dev"),
            "--port",
            "0",  # any free ports: the profile dev writes names the one it bound
            "--metrics-port",
            "0",
        ],
        env=env,
        cwd=ROOT,
    )
    hostname = socket.gethostname()
    try:
        dev.wait_for_line(r"fleetops is running", timeout=120)
        dev.wait_for_line(r"connected to .* as host", timeout=60)
        seen: dict[str, str] = {}
        for line in walkthrough():
            if line.startswith(". "):
                continue  # every line below runs with the virtualenv active
            if line.startswith("opsctl session ") and len(shlex.split(line.replace('"$(hostname)"', "h"))) == 3:
                seen[line] = _interactive_session(line, env, tmp_path)
                continue
            # A line that sets up this shell (completion) is checked in the shell it set up.
            check = " && complete -p opsctl" if line.startswith("source ") else ""
            # ssh reads the account's ~/.ssh (from the password database, not $HOME): point it at
            # the configuration the README's ssh-config line installed under this test's HOME.
            command = line.replace("ssh ", 'ssh -F "$HOME/.ssh/config" -o BatchMode=yes ', 1)
            command = command if line.startswith("ssh ") else line
            result = subprocess.run(
                ["bash", "-c", f". .venv/bin/activate && {command}{check}"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, f"README line failed: {line}\n{result.stdout}\n{result.stderr}"
            assert "Traceback" not in result.stderr, line
            seen[line] = result.stdout

        assert hostname in seen["opsctl hosts list"]
        assert re.search(r"\bonline\b", seen["opsctl hosts list"])
        assert hostname in seen['opsctl hosts show "$(hostname)"']
        assert os.uname().sysname in seen["opsctl run --all -- uname -a"]
        assert "load average" in seen['ssh root@"$(hostname)".fleet uptime']
        activation = next(out for line, out in seen.items() if line.startswith("opsctl activation create"))
        assert re.search(r"code", activation, re.I)
        audit = seen["opsctl audit list"]
        for action in ("command.run", "session.start", "activation.create"):
            assert action in audit, f"{action} missing from opsctl audit list:\n{audit}"
        completion = next((out for line, out in seen.items() if "opsctl completion bash" in line), None)
        if completion is not None:
            assert "opsctl" in completion  # `complete -p opsctl` found the function it installed

        # "then: opsctl session list, play ID" — the recorded session is listed and replays.
        sessions = _opsctl(env, "session", "list", "-o", "json")
        recorded = [s for s in json.loads(sessions) if s.get("host_name") == hostname and s["kind"] == "terminal"]
        assert recorded, sessions
        replay = _opsctl(env, "session", "play", recorded[0]["id"], "--speed", "100", "--idle-limit", "0.1")
        assert "walkthrough-42" in replay
    finally:
        assert dev.stop() == 0, dev.output()


def _opsctl(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/opsctl"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"opsctl {shlex.join(args)}: {result.stderr}"
    return result.stdout


def _interactive_session(line: str, env: dict[str, str], tmp_path: Path) -> str:
    """The README's session line on a real terminal: type a command, see its output, exit."""
    terminal = PtyProcess(
        ["bash", "-c", f"cd {shlex.quote(str(ROOT))} && . .venv/bin/activate && {line}"],
        env={**env, "TERM": "xterm"},
        stderr=tmp_path / "session.err",
    )
    try:
        terminal.send("echo walkthrough-$((6*7))\r")
        terminal.expect(rb"walkthrough-42", timeout=60)
        terminal.send("exit\r")
        output = terminal.read_to_end(timeout=60)
        assert terminal.wait(timeout=30) == 0, (tmp_path / "session.err").read_text()
        return (terminal.output or output).decode(errors="replace")
    finally:
        terminal.close()
