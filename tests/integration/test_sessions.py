"""`opsctl session` under a real pseudo-terminal, through real controller and agent processes.

Every step reads the operator's screen until a pattern shows up. Patterns are built so that the
typed command's echo cannot match them (``echo $((6*7))x`` prints ``42x``; its echo does not).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from events import of_type, wait_for_events
from harness import BASE_ENV, PYTHON, Agent, Controller, start_fleet, wait_until
from tcp_proxy import TcpProxy
from terminal import PtyProcess

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")]

PROMPT = r"[#$] $"


@pytest.fixture(scope="module")
def controller(module_controller: Controller) -> Controller:
    return module_controller


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(module_controller, tmp_path_factory.mktemp("session-agents"), {"web-1": {"role": "web"}})
    yield agents
    for agent in agents.values():
        agent.stop()


def session(
    controller: Controller,
    *args: str,
    profile: Path | None = None,
    cols: int = 80,
    rows: int = 24,
    stderr: Path | None = None,
) -> PtyProcess:
    env = {**os.environ, **BASE_ENV, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    argv = [PYTHON, "-m", "fleetops.opsctl", "--profile", str(profile or controller.profile), "session", *args]
    return PtyProcess(argv, env, cols=cols, rows=rows, stderr=stderr)


def shell_ready(term: PtyProcess) -> None:
    """Wait for the remote shell, then give it a prompt we can recognise."""
    term.send("PS1='R''DY> '\r")
    term.expect(r"RDY> ")


def running(*argv: str) -> psutil.Process:
    """The local process running exactly ``argv`` (the agent is on this machine), once it runs."""

    def find() -> psutil.Process | None:
        for process in psutil.process_iter(["cmdline"]):
            if process.info["cmdline"] == list(argv):
                return process
        return None

    return wait_until(find, 30, f"{' '.join(argv)} to run")


def sessions_json(controller: Controller, *args: str) -> list[dict]:
    return list(controller.opsctl_json("session", "list", *args))


def show(controller: Controller, session_id: str) -> dict:
    return dict(controller.opsctl_json("session", "show", session_id))


def only_active_session(controller: Controller) -> dict:
    active = wait_until(lambda: sessions_json(controller, "--active"), 30, "an active session")
    assert len(active) == 1, active
    return active[0]


def asciinema() -> str:
    program = shutil.which("asciinema", path=os.pathsep.join([str(Path(PYTHON).parent), os.environ["PATH"]]))
    if program is None:
        pytest.fail("asciinema is not installed (pip install asciinema; it is in the test extras)")
    return program


def test_shell_exit_code_transcript_and_asciinema(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    term = session(controller, "web-1")
    try:
        shell_ready(term)
        term.send('echo $((6*7))x; echo "$0" login$((1+1))\r')
        term.expect(r"42x")
        shell_name = term.expect(rb"\r\n(-?\S+) login2").group(1)
        assert shell_name.startswith(b"-"), f"not a login shell: {shell_name!r}"
        record = only_active_session(controller)
        assert record["host_name"] == "web-1" and record["state"] == "active"
        term.send("exit 7\r")
        assert term.wait() == 7
    finally:
        term.close()

    session_id = record["id"]
    done = wait_until(
        lambda: (doc := show(controller, session_id))["transcript_state"] == "stored" and doc, 30, "stored transcript"
    )
    assert done["state"] == "ended" and done["end_reason"] == "exited" and done["exit_code"] == 7
    cast = tmp_path / "web-1.cast"
    controller.opsctl("session", "export", session_id, str(cast))
    data = cast.read_bytes()
    assert hashlib.sha256(data).hexdigest() == done["transcript_sha256"] and len(data) == int(done["transcript_size"])
    header = json.loads(data.splitlines()[0])
    assert header["version"] == 2 and header["width"] == 80 and header["height"] == 24
    assert header["env"]["TERM"] == "xterm-256color" and header["env"]["SHELL"]

    played = subprocess.run(
        [asciinema(), "cat", str(cast)], capture_output=True, timeout=60, env={**os.environ, "LANG": "C.UTF-8"}
    )
    assert played.returncode == 0, played.stderr
    assert b"42x" in played.stdout and b"login2" in played.stdout

    # The end is in the audit log with the transcript's hash.
    events = controller.opsctl_json("audit", "list", "--action", "session.end")
    mine = [e for e in events if e["target"] == session_id]
    assert mine and json.loads(mine[0]["details_json"])["sha256"] == done["transcript_sha256"]

    # Its events: started, then ended with the exit code, each once (tests/support/events.py).
    found = wait_for_events(
        controller.database_url or controller.state_dir,
        lambda es: any(e.data["session_id"] == session_id for e in of_type(es, "fleetops.session.ended")),
        "fleetops.session.",
    )
    mine_events = [e for e in found if e.data["session_id"] == session_id]
    assert [(e.type, e.subject, e.host) for e in mine_events] == [
        ("fleetops.session.started", f"session/{session_id}", "web-1"),
        ("fleetops.session.ended", f"session/{session_id}", "web-1"),
    ]
    ended = mine_events[1].data
    assert (ended["reason"], ended["exit_code"], ended["operator"]) == ("exited", 7, record["operator"])
    assert ended["duration_seconds"] > 0


def test_resize_ctrl_c_and_ctrl_z_behave_as_over_ssh(controller: Controller, fleet: dict[str, Agent]) -> None:
    term = session(controller, "web-1", cols=100, rows=30)
    try:
        shell_ready(term)
        term.send("stty size; echo size$((1))\r")
        term.expect(r"30 100\r\nsize1")
        term.resize(132, 43)
        term.send("stty size; echo size$((2))\r")
        term.expect(r"43 132\r\nsize2")
        # Ctrl-C interrupts the remote program, not the session. (Keys go once the program runs:
        # typed earlier, the shell itself would take them.)
        term.send("sleep 61; echo slept$((3))\r")
        running("sleep", "61")
        term.send(b"\x03")
        term.expect(r"RDY> ")
        term.send("echo alive$((4))\r")
        term.expect(r"alive4")
        assert b"slept3" not in term.output
        # Ctrl-Z stops the foreground job; the shell's job control takes it back.
        term.send("sleep 62\r")
        process = running("sleep", "62")
        term.send(b"\x1a")
        term.expect(r"(?i)stopped")
        assert process.status() == psutil.STATUS_STOPPED
        term.send("kill %1; echo killed$((5))\r")
        term.expect(r"killed5")
        term.send("exit\r")
        assert term.wait() == 0
    finally:
        term.close()


def test_command_and_bad_requests(controller: Controller, fleet: dict[str, Agent]) -> None:
    term = session(controller, "web-1", "--command", "echo one-shot$((9*9)); exit 3")
    try:
        term.expect(r"one-shot81")
        assert term.wait() == 3
    finally:
        term.close()

    unknown = session(controller, "no-such-host")
    try:
        assert unknown.wait() == 3
        assert b"no-such-host" in unknown.output and b"Traceback" not in unknown.output
    finally:
        unknown.close()

    nobody = session(controller, "web-1", "--as", "no-such-user-xyz")
    try:
        assert nobody.wait() == 3, nobody.output
        assert b"no-such-user-xyz" in nobody.output and b"Traceback" not in nobody.output
    finally:
        nobody.close()
    refused = [
        e for e in controller.opsctl_json("audit", "list", "--action", "session.start") if e["outcome"] == "refused"
    ]
    assert any("no-such-user-xyz" in e["details_json"] for e in refused)


def test_kill_ends_the_session_with_a_message(controller: Controller, fleet: dict[str, Agent]) -> None:
    term = session(controller, "web-1")
    try:
        shell_ready(term)
        record = only_active_session(controller)
        controller.opsctl("session", "kill", record["id"])
        code = term.wait()
        assert code == 129, term.output  # the shell was hung up
        assert re.search(rb"killed by operator:admin", term.output), term.output
    finally:
        term.close()
    done = show(controller, record["id"])
    assert done["state"] == "ended" and done["end_reason"] == "killed"
    assert not sessions_json(controller, "--active")


def test_a_dropped_link_resumes_without_losing_or_doubling_a_byte(
    controller: Controller, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Both the operator's and the agent's connection die mid-output; the session carries on."""
    operator_proxy = TcpProxy("127.0.0.1", controller.ports["listen"]).start()
    agent_proxy = TcpProxy("127.0.0.1", controller.ports["listen"]).start()
    agents = start_fleet(controller, tmp_path_factory.mktemp("resume-agents"), {"flaky-1": {}})
    agent = agents["flaky-1"]
    try:
        # Point the agent at its proxy and restart it.
        state = agent.state_dir / "agent.json"
        doc = json.loads(state.read_text())
        state.write_text(json.dumps({**doc, "controller": f"127.0.0.1:{agent_proxy.port}"}))
        agent.start()
        profile = controller.issue_profile("admin", tmp_path / "proxied", address=f"127.0.0.1:{operator_proxy.port}")
        errors = tmp_path / "opsctl.stderr"
        term = session(controller, "flaky-1", profile=profile, stderr=errors)
        try:
            shell_ready(term)
            count = 300_000
            term.send(f"seq 1 {count}; echo end$((6*7))\r")
            term.expect(r"\r\n20000\r\n")
            assert agent_proxy.drop() >= 2  # the control stream and the session stream
            assert operator_proxy.drop() >= 1
            term.expect(r"end42", timeout=90)
            term.send("exit\r")
            assert term.wait() == 0
        finally:
            term.close()
        text = term.output.decode()
        first = re.search(r"[\r\n]1\r\n2\r\n", text)
        assert first, text[:3000]
        start = first.start() + 1
        numbers = text[start : text.index("end42", start)].split()
        assert numbers == [str(n) for n in range(1, count + 1)], "output lost or doubled across the resume"
        assert "reconnect" in errors.read_text()  # opsctl told the operator
    finally:
        agent.stop()
        operator_proxy.stop()
        agent_proxy.stop()
