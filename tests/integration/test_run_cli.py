"""``opsctl run`` as a user sees it, against real controller and agent processes.

Streaming on one host (like ssh), ``--stream`` on many (lines prefixed with the host), results as each
host finishes, ``run output --follow``, ``run show`` bytes so far, binary output and cut output.
Jobs that must still be running while the test looks wait for a gate file the test creates: no sleeps.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import BASE_ENV, PYTHON, Agent, Controller, start_fleet, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def controller(module_controller: Controller) -> Controller:
    return module_controller


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("run-cli-agents"),
        {"web-1": {"role": "web"}, "web-2": {"role": "web"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


class Opsctl:
    """A running ``opsctl``: its stdout and stderr collected apart, as they come, by reader threads."""

    def __init__(self, controller: Controller, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=BASE_ENV,
        )
        self._out = bytearray()
        self._err = bytearray()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, pipe: object, into: bytearray) -> None:
        while chunk := pipe.read1(65536):  # type: ignore[attr-defined]  # a BufferedReader
            with self._lock:
                into += chunk

    @property
    def out(self) -> str:
        with self._lock:
            return self._out.decode(errors="replace")

    @property
    def err(self) -> str:
        with self._lock:
            return self._err.decode(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 60) -> int:
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            for t in self._threads:
                t.join(5)
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        return rc


def opsctl(controller: Controller, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), *args],
        capture_output=True,
        timeout=60,
        env=BASE_ENV,
    )


def ticking(gate: Path, host_filter: str = "") -> str:
    """A job that prints ``tick N`` every 0.2 s until ``gate`` exists, then ``done`` and ``warn`` on stderr.

    ``host_filter``: only that host waits for the gate; the others print one tick and end at once.
    """
    wait = f'[ "$FLEETOPS_HOST_NAME" = {host_filter} ] || break; ' if host_filter else ""
    return f'i=0; while [ ! -e {gate} ]; do i=$((i+1)); echo "tick $i"; {wait}sleep 0.2; done; echo done; echo warn >&2'


def test_one_host_streams_as_the_command_runs(controller: Controller, fleet: dict[str, Agent], tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run = Opsctl(controller, "run", "--host", "web-1", "--", "sh", "-c", ticking(gate))
    try:
        wait_until(lambda: "tick 2\n" in run.out, 30, "two lines streamed from web-1")
        assert run.running()  # they came while the command runs
    finally:
        gate.touch()
    assert run.wait() == 0, run.err
    lines = run.out.splitlines()
    assert lines[:2] == ["tick 1", "tick 2"] and lines[-1] == "done"
    assert "matched" not in run.out  # stdout is the command's alone, as with ssh
    assert "1 host matched: web-1" in run.err and "warn" in run.err.splitlines()


def test_stream_prefixes_each_line_with_its_host(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    script = ticking(gate) + "; printf 'no newline'"
    run = Opsctl(controller, "run", "--target", "role=web", "--stream", "--", "sh", "-c", script)
    try:
        wait_until(lambda: "web-1: tick 1\n" in run.out and "web-2: tick 1\n" in run.out, 30, "a line from each host")
        assert run.running()
    finally:
        gate.touch()
    assert run.wait() == 0, run.err
    out = run.out.splitlines()
    for host in ("web-1", "web-2"):
        mine = [line for line in out if line.startswith(f"{host}: ")]
        assert mine[0] == f"{host}: tick 1" and mine[-2:] == [f"{host}: done", f"{host}: no newline"]
        assert f"── {host}: success" in out
        assert f"{host}: warn" in run.err.splitlines()  # stderr lines on stderr, prefixed too
    assert out[-1].endswith("success on 2 hosts (2 success)")


def test_results_appear_as_each_host_finishes(controller: Controller, fleet: dict[str, Agent], tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = 'echo "on $FLEETOPS_HOST_NAME"; ' + ticking(gate, host_filter="web-2")
    run = Opsctl(controller, "run", "--target", "role=web", "--", "sh", "-c", script)
    try:
        wait_until(lambda: "── web-1\n   on web-1\n   tick 1\n   done\n" in run.out, 30, "web-1's result")
        assert run.running() and "── web-2" not in run.out  # web-2 still runs and holds nothing back
    finally:
        gate.touch()
    assert run.wait() == 0, run.err
    assert "── web-2\n   on web-2\n" in run.out
    assert "── 2 hosts" not in run.out  # different output: no recap group of two
    assert run.out.splitlines()[-1].endswith("success on 2 hosts (2 success)")


def test_follow_tails_a_running_invocation_and_show_counts_bytes(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    started = opsctl(controller, "run", "--host", "web-1", "--detach", "--", "sh", "-c", ticking(gate))
    command_id = started.stdout.decode().split()[-1]
    tail = Opsctl(controller, "run", "output", command_id, "web-1", "--follow")
    try:
        wait_until(lambda: "tick 2\n" in tail.out, 30, "the followed output")
        shown = opsctl(controller, "run", "show", command_id).stdout.decode()
        row = next(line.split() for line in shown.splitlines() if line.startswith("web-1 "))
        assert row[1] == "running" and row[3:5] != ["0", "B"], shown  # bytes so far
        assert tail.running()
    finally:
        gate.touch()
    assert tail.wait() == 0, tail.err
    assert tail.out.splitlines()[0] == "tick 1" and tail.out.splitlines()[-1] == "done"
    # once it has ended, the same command prints it whole and returns
    again = opsctl(controller, "run", "output", command_id, "web-1", "--follow")
    assert again.returncode == 0 and again.stdout.decode() == tail.out
    assert opsctl(controller, "run", "output", command_id, "web-1", "--stderr").stdout == b"warn\n"


def test_binary_output_is_named_and_json_carries_it_losslessly(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x7fELF\x00" + os.urandom(295))
    text = opsctl(controller, "run", "--target", "role=web", "--", "cat", str(blob))
    assert text.returncode == 0
    command_id = text.stdout.decode().splitlines()[1].split()[-1]
    save = rf"opsctl run output {command_id} web-[12] > FILE"  # the host that finished first
    assert re.search(rf"^   binary, 300 B \(300 bytes\); save it: {save}$", text.stdout.decode(), re.M)
    assert b"ELF" not in text.stdout

    as_json = opsctl(controller, "run", "--target", "role=web", "-o", "json", "--", "cat", str(blob))
    docs = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(docs) == 2
    for doc in docs:
        assert doc["stdout"] is None and base64.b64decode(doc["stdout_base64"]) == blob.read_bytes()
        assert doc["stdout_bytes"] == 300 and doc["stdout_truncated"] is False


def test_one_host_on_a_terminal_never_gets_binary_dumped(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"text first\n" + b"\x00\x1b[2J" + os.urandom(200))
    rc, screen = read_terminal(
        [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "run", "--host", "web-1", "--"]
        + ["cat", str(blob)]
    )
    assert rc == 0, screen
    assert b"text first" in screen and b"\x1b[2J" not in screen
    assert b"web-1: stdout is binary from byte 11 on, 216 B (216 bytes) in all; save it: opsctl run output" in screen


def test_cut_output_starts_at_a_line_and_says_how_to_get_it_all(
    controller: Controller, fleet: dict[str, Agent]
) -> None:
    result = opsctl(controller, "run", "--target", "role=web", "--", "seq", "1", "30000")
    assert result.returncode == 0
    out = result.stdout.decode().splitlines()
    command_id = out[1].split()[-1]
    cut = re.compile(
        r"   … output cut: showing the last 64\.0 KiB of 164\.9 KiB; "
        rf"all of it: opsctl run output {command_id} (\S+) > FILE"
    )
    marker, first_host = next((n, m[1]) for n, line in enumerate(out) if (m := cut.fullmatch(line)))
    first, second = int(out[marker + 1]), int(out[marker + 2])  # whole numbers: whole lines
    assert second == first + 1 and out[marker - 1] == f"── {first_host}"
    other = "web-2" if first_host == "web-1" else "web-1"
    assert out[out.index(f"── {other}: same as {first_host}") - 1] == "   30000"
    full = opsctl(controller, "run", "output", command_id, "web-1")
    assert full.stdout.decode().split() == [str(n) for n in range(1, 30001)]


def read_terminal(args: list[str]) -> tuple[int, bytes]:
    """Run ``args`` on a pseudo-terminal (stdin, stdout and stderr); its exit status and everything it drew."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=BASE_ENV)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal closed when the program exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(60), b"".join(chunks)


def test_an_offline_host_is_named_while_the_others_results_show(
    controller: Controller, fleet: dict[str, Agent]
) -> None:
    fleet["web-2"].stop()
    try:
        wait_until(lambda: "offline" in controller.host_status("web-2").lower(), 15, "web-2 offline")
        rc, screen = read_terminal(
            [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "run", "--target", "role=web"]
            + ["--delivery-timeout", "3s", "--", "echo", "hi"]
        )
    finally:
        fleet["web-2"].start()
    text = screen.decode(errors="replace")
    assert rc == 1, text
    assert "── web-1\r\n   hi\r\n" in text
    assert "1/2 done · 1 pending · web-2: host offline since " in text  # the progress line says why it waits
    assert text.index("── web-1") < text.index("── web-2 undeliverable")  # web-1 was not held back
    summary = text.splitlines()[-1]
    assert ": failed on 2 hosts (" in summary and "1 success" in summary and "1 undeliverable" in summary
