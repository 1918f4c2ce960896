"""`opsctl cp` and `opsctl forward` against a real controller and agent (no ssh binary involved).

Both open an SSH connection inside opsctl over the session stream (opsctl/ssh_connection.py). The
agent runs on this machine, so a "remote" path is a local temporary path and a "remote" port a
local one.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import PYTHON, Agent, Controller, Process, start_fleet

pytestmark = pytest.mark.slow

FORWARDING = r"^forwarding (127\.0\.0\.1):(\d+) -> web-1 -> (\S+) \(Ctrl-C to stop\)$"
NO_FORWARD_ROLE = """
name: {name}
description: sessions as root on web hosts, forwards only to port 1
allow:
  - actions: [session.start, hosts.read]
    hosts: "role=web"
    logins: [root]
  - actions: [ssh.forward]
    hosts: "role=web"
    destinations: ["127.0.0.1:1"]
"""


@pytest.fixture(scope="module")
def controller(module_controller: Controller) -> Controller:
    return module_controller


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(module_controller, tmp_path_factory.mktemp("cp-agents"), {"web-1": {"role": "web"}})
    yield agents
    for agent in agents.values():
        agent.stop()


@pytest.fixture(scope="module")
def limited_profile(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An operator who may log in as root but not transfer files, and forward only to port 1."""
    directory = tmp_path_factory.mktemp("limited")
    role = directory / "role.yaml"
    role.write_text(NO_FORWARD_ROLE.format(name="no-forward"))
    module_controller.opsctl("admin", "role", "create", "no-forward", "--file", str(role))
    return module_controller.issue_profile("cpbob", directory / "profile", roles=("no-forward",))


@pytest.fixture
def web_server() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 (port 0): GET /N answers ``hello N`` after reading the whole request."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            body = f"hello {self.path.lstrip('/')}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- http.server's signature
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(10)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def start_forward(controller: Controller, *args: str, profile: Path | None = None) -> Process:
    argv = [PYTHON, "-m", "fleetops.opsctl", "--profile", str(profile or controller.profile), "forward", *args]
    return Process("opsctl forward", argv)


def interrupt(proc: Process) -> int:
    """SIGINT (Ctrl-C), and the exit code."""
    proc.proc.send_signal(signal.SIGINT)
    code = proc.proc.wait(30)
    proc.stop()  # collects the reader thread and closes the pipe
    return code


# -- opsctl cp ------------------------------------------------------------------------------------
def test_cp_copies_100_mb_both_ways_with_matching_sha256(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    source = tmp_path / "payload.bin"
    with source.open("wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    want = sha256(source)
    remote = tmp_path / "remote" / "payload.bin"  # the agent runs here: its path is a local one
    remote.parent.mkdir()

    up = controller.opsctl("cp", str(source), f"web-1:{remote.parent}/")
    assert sha256(remote) == want
    assert up.stdout.strip() == f"copied {100 << 20} bytes to web-1:{remote} (sha256 {want})"
    assert up.stderr == ""  # no progress when stderr is not a terminal

    back = tmp_path / "back.bin"
    down = controller.opsctl("cp", f"root@web-1:{remote}", str(back))
    assert sha256(back) == want
    assert down.stdout.strip() == f"copied {100 << 20} bytes to {back} (sha256 {want})"


def test_cp_r_copies_a_tree_both_ways(controller: Controller, fleet: dict[str, Agent], tmp_path: Path) -> None:
    tree = tmp_path / "site"
    (tree / "css").mkdir(parents=True)
    (tree / "index.html").write_text("<h1>hi</h1>")
    (tree / "css" / "site.css").write_text("h1 {}")
    (tree / "empty").mkdir()
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o750)
    remote = tmp_path / "remote"
    remote.mkdir()

    up = controller.opsctl("cp", "-r", str(tree), f"web-1:{remote}")
    assert (remote / "site" / "css" / "site.css").read_text() == "h1 {}"
    assert (remote / "site" / "empty").is_dir()
    assert (remote / "site" / "run.sh").stat().st_mode & 0o777 == 0o750
    assert up.stdout.strip().startswith(f"copied 3 files, 26 bytes to web-1:{remote / 'site'} (sha256 verified")

    down = controller.opsctl("cp", "-r", f"web-1:{remote / 'site'}", str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "index.html").read_text() == "<h1>hi</h1>"
    assert (tmp_path / "copy" / "css" / "site.css").read_text() == "h1 {}"
    assert down.stdout.strip().startswith(f"copied 3 files, 26 bytes to {tmp_path / 'copy'}")


def test_cp_errors_are_clear_lines_not_tracebacks(
    controller: Controller, fleet: dict[str, Agent], limited_profile: Path, tmp_path: Path
) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    cases = [
        (
            ["cp", f"web-1:{tmp_path / 'missing'}", str(tmp_path / "x")],
            3,
            f"web-1:{tmp_path / 'missing'}: no such file",
        ),
        (["cp", str(tmp_path / "file"), f"web-1:{tmp_path / 'no' / 'such'}"], 3, "no such directory"),
        (["cp", str(tmp_path / "missing"), "web-1:/tmp/"], 3, "no such local file"),
        (["cp", str(tmp_path / "dir"), "web-1:/tmp/"], 2, "is a directory"),
        (["cp", f"web-1:{tmp_path / 'dir'}", str(tmp_path / "y")], 2, "is a directory"),
        (["cp", str(tmp_path / "file"), "nosuchhost:/tmp/x"], 3, "nosuchhost"),
    ]
    for argv, code, words in cases:
        result = controller.opsctl(*argv, check=False)
        assert result.returncode == code, (argv, result.stderr)
        assert result.stderr.startswith("error: ") and words in result.stderr, (argv, result.stderr)
        assert "Traceback" not in result.stderr and "hint: " in result.stderr

    refused = controller.opsctl("cp", str(tmp_path / "file"), "web-1:/tmp/", profile=limited_profile, check=False)
    assert refused.returncode == 5, refused.stderr
    assert "refused SFTP" in refused.stderr and "file.transfer" in refused.stderr, refused.stderr


# -- opsctl forward -------------------------------------------------------------------------------
def test_forward_carries_concurrent_connections_over_one_forward(
    controller: Controller, fleet: dict[str, Agent], web_server: int
) -> None:
    proc = start_forward(controller, "web-1", f"0:{web_server}")
    try:
        m = proc.wait_for_line(FORWARDING, timeout=60)
        assert m.group(3) == f"127.0.0.1:{web_server}"
        local = f"http://127.0.0.1:{m.group(2)}"

        def get(i: int) -> str:
            with urllib.request.urlopen(f"{local}/{i}", timeout=30) as response:
                return bytes(response.read()).decode()

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(get, range(24)))
        assert answers == [f"hello {i}" for i in range(24)]
    finally:
        code = interrupt(proc)
    assert code == 0, proc.output()
    assert "refused" not in proc.output() and "Traceback" not in proc.output()


def test_a_forward_the_role_does_not_allow_is_refused_with_a_clear_message(
    controller: Controller, fleet: dict[str, Agent], limited_profile: Path, web_server: int
) -> None:
    result = controller.opsctl("forward", "web-1", f"0:{web_server}", profile=limited_profile, check=False)
    assert result.returncode == 5, result.stderr
    assert f"error: web-1 refused to forward to 127.0.0.1:{web_server}" in result.stderr
    assert "hint: your role needs ssh.forward" in result.stderr and "Traceback" not in result.stderr

    # Without the start-up check: each refused connection is a line, and the forward keeps running.
    proc = start_forward(controller, "--no-check", "web-1", f"0:{web_server}", profile=limited_profile)
    try:
        m = proc.wait_for_line(FORWARDING, timeout=60)
        for attempt in range(2):
            with pytest.raises(OSError):  # closed without an answer
                urllib.request.urlopen(f"http://127.0.0.1:{m.group(2)}/x", timeout=30).close()
            proc.wait_for_line(r"^web-1 refused a connection from 127\.0\.0\.1:\d+ to ", start=proc.next_index)
            if attempt == 0:  # once, after the first refusal
                proc.wait_for_line(r"^hint: your role needs ssh\.forward", start=proc.next_index)
    finally:
        code = interrupt(proc)
    assert code == 0, proc.output()
