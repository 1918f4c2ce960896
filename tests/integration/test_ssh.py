"""Stock OpenSSH clients (ssh, scp, sftp) to a host through `opsctl proxy`: no sshd, no open port.

The agent's built-in SSH server is reached over the session stream; the operator's key is
certified by the controller's SSH user CA and hosts by its SSH host CA, so there is no
trust-on-first-use prompt and no static key anywhere (docs/ssh.md).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetops.common.ssh import asyncssh

from harness import BASE_ENV, PYTHON, Agent, Controller, candidate_port, start_fleet, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client (apt-get install openssh-client)"),
]

SSH_TIMEOUT = 60.0

LOGIN_USER = "fleetops-ssh-test"  # an account with a shell, made for these tests
DEPLOY_ONLY = f"""
name: deploy-only
description: sessions on web hosts as {LOGIN_USER} only
allow:
  - actions: [session.start, hosts.read]
    hosts: "role=web"
    logins: [{LOGIN_USER}]
"""


@pytest.fixture(scope="module")
def controller(module_controller: Controller) -> Controller:
    return module_controller


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(module_controller, tmp_path_factory.mktemp("ssh-agents"), {"web-1": {"role": "web"}})
    yield agents
    for agent in agents.values():
        agent.stop()


def ssh_config(controller: Controller, profile: Path, directory: Path) -> Path:
    """`opsctl ssh-config` for ``profile``, written where ``ssh -F`` reads it."""
    result = controller.opsctl("ssh-config", profile=profile)
    assert "Host *.fleet" in result.stdout
    config = directory / "ssh_config"
    config.write_text(result.stdout)
    return config


@pytest.fixture(scope="module")
def login_user() -> str:
    if shutil.which("useradd") is None or os.geteuid() != 0:
        pytest.skip("needs root and useradd to make a login account")
    try:
        pwd.getpwnam(LOGIN_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", LOGIN_USER], check=True, capture_output=True, timeout=60)
    return LOGIN_USER


@pytest.fixture(scope="module")
def admin_config(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssh_config(module_controller, module_controller.profile, tmp_path_factory.mktemp("admin-ssh"))


@pytest.fixture(scope="module")
def web_server() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 (on the host: the agent runs on this machine); yields its port."""

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"hello from {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def asciinema() -> str:
    program = shutil.which("asciinema", path=os.pathsep.join([str(Path(PYTHON).parent), os.environ["PATH"]]))
    if program is None:
        pytest.fail("asciinema is not installed (pip install asciinema; it is in the test extras)")
    return program


def ssh_tool(tool: str, config: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    argv = [tool, "-F", str(config), "-o", "BatchMode=yes", *args]
    return subprocess.run(argv, input=stdin, capture_output=True, env=BASE_ENV, timeout=SSH_TIMEOUT, check=False)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_ssh_runs_a_command_on_a_host_with_no_sshd_and_reports_its_exit_status(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path
) -> None:
    result = ssh_tool("ssh", admin_config, "root@web-1.fleet", "echo $((6*7))x; id -un; exit 3")
    assert result.returncode == 3, result.stderr.decode()
    assert result.stdout.decode().split() == ["42x", "root"]
    # Trusted through the fleet's host CA: no prompt, no "Permanently added" warning.
    assert b"Warning" not in result.stderr

    sessions = controller.opsctl_json("session", "list", "--host", "web-1")
    ssh_sessions = [s for s in sessions if s["kind"] == "ssh"]
    assert ssh_sessions, sessions
    assert ssh_sessions[0]["run_as"] == "root"
    assert ssh_sessions[0]["transcript_state"] == "none"


def test_stdin_passes_and_a_pty_is_given_when_asked(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path
) -> None:
    piped = ssh_tool("ssh", admin_config, "root@web-1.fleet", "wc -c", stdin=b"x" * 100_000)
    assert piped.returncode == 0, piped.stderr.decode()
    assert piped.stdout.decode().strip() == "100000"

    tty = ssh_tool("ssh", admin_config, "-tt", "root@web-1.fleet", "tty; echo $TERM")
    assert tty.returncode == 0, tty.stderr.decode()
    assert b"/dev/pts/" in tty.stdout


def test_a_shell_on_a_pty_is_recorded_as_an_asciicast_transcript(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path, tmp_path: Path
) -> None:
    shell = ssh_tool("ssh", admin_config, "-tt", "root@web-1.fleet", stdin=b"echo $((6*7))x\nexit 4\n")
    assert shell.returncode == 4, shell.stderr.decode()
    assert b"42x" in shell.stdout

    [record] = [s for s in controller.opsctl_json("session", "list", "--host", "web-1") if s["kind"] == "ssh"][:1]
    done = wait_until(
        lambda: (
            (doc := controller.opsctl_json("session", "show", record["id"]))["transcript_state"] == "stored" and doc
        ),
        30,
        "the SSH session's stored transcript",
    )
    cast = tmp_path / "ssh.cast"
    controller.opsctl("session", "export", record["id"], str(cast))
    data = cast.read_bytes()
    assert hashlib.sha256(data).hexdigest() == done["transcript_sha256"]
    header = json.loads(data.splitlines()[0])
    assert header["version"] == 2 and header["env"]["TERM"]
    played = subprocess.run(
        [asciinema(), "cat", str(cast)], capture_output=True, timeout=60, env={**BASE_ENV, "LANG": "C.UTF-8"}
    )
    assert played.returncode == 0, played.stderr
    assert b"42x" in played.stdout


def test_scp_copies_a_file_both_ways_with_matching_sha256(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path, tmp_path: Path
) -> None:
    source = tmp_path / "payload.bin"
    source.write_bytes(os.urandom(100 << 20))  # 100 MiB each way
    remote = tmp_path / "remote-copy.bin"  # the agent runs on this machine: the "remote" path is local
    up = ssh_tool("scp", admin_config, str(source), f"root@web-1.fleet:{remote}")
    assert up.returncode == 0, up.stderr.decode()
    assert sha256(remote) == sha256(source)

    back = tmp_path / "back.bin"
    down = ssh_tool("scp", admin_config, f"root@web-1.fleet:{remote}", str(back))
    assert down.returncode == 0, down.stderr.decode()
    assert sha256(back) == sha256(source)

    # Both copies are audit events with the path, the direction, the size and the file's digest.
    def transfers() -> dict[str, dict]:
        events = controller.opsctl_json("audit", "list", "--action", "file.transfer")
        found = {}
        for event in events:
            details = json.loads(event["details_json"])
            if details.get("path") == str(remote):
                found[details["direction"]] = details | {"actor": event["actor"]}
        return found if len(found) == 2 else {}

    found = wait_until(transfers, 30, "the transfers' audit events")
    for direction in ("upload", "download"):
        assert found[direction]["sha256"] == sha256(source), found
        assert found[direction]["size"] == source.stat().st_size and found[direction]["actor"] == "operator:admin"
        assert found[direction]["host"] == "web-1" and found[direction]["reported_by"].startswith("host:")


def test_sftp_lists_a_directory(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path, tmp_path: Path
) -> None:
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "one.txt").write_text("1")
    (tmp_path / "listed" / "two.txt").write_text("2")
    batch = tmp_path / "batch"
    batch.write_text(f"ls -1 {tmp_path / 'listed'}\n")
    result = ssh_tool("sftp", admin_config, "-b", str(batch), "root@web-1.fleet")
    assert result.returncode == 0, result.stderr.decode()
    names = [Path(line).name for line in result.stdout.decode().split() if line.endswith(".txt")]
    assert sorted(names) == ["one.txt", "two.txt"]


def test_ssh_L_forwards_a_local_port_to_a_web_server_behind_the_host(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path, web_server: int
) -> None:
    local = candidate_port()
    argv = ["ssh", "-F", str(admin_config), "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-N"]
    argv += ["-L", f"127.0.0.1:{local}:127.0.0.1:{web_server}", "root@web-1.fleet"]
    forward = subprocess.Popen(argv, env=BASE_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:

        def listening() -> bool:
            assert forward.poll() is None, forward.stderr.read().decode() if forward.stderr else ""
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", local)) == 0

        wait_until(listening, 30, f"ssh -L to listen on {local}")
        for path in ("/a", "/b", "/c"):  # several connections over the one forward
            with urllib.request.urlopen(f"http://127.0.0.1:{local}{path}", timeout=30) as response:
                assert response.read() == f"hello from {path}".encode()
    finally:
        forward.terminate()
        forward.wait(timeout=30)
        if forward.stderr:
            forward.stderr.close()

    # Each forwarded connection is an audit event: where to, bytes each way, how long.
    def forwards() -> list[dict]:
        events = controller.opsctl_json("audit", "list", "--action", "ssh.forward")
        details = [json.loads(e["details_json"]) for e in events]
        # The readiness probe above opened one too, and sent nothing.
        mine = [d for d in details if d["destination"] == f"127.0.0.1:{web_server}" and d["bytes_to_destination"]]
        return mine if len(mine) >= 3 else []

    for note in wait_until(forwards, 30, "the forwards' audit events"):
        assert note["bytes_from_destination"] > len("hello from /a")  # the response, headers included
        assert note["direction"] == "local" and note["duration_seconds"] >= 0 and note["login"] == "root"


def test_a_login_the_role_does_not_allow_is_refused_and_audited(
    controller: Controller, fleet: dict[str, Agent], login_user: str, web_server: int, tmp_path: Path
) -> None:
    role_file = tmp_path / "deploy-only.yaml"
    role_file.write_text(DEPLOY_ONLY)
    controller.opsctl("admin", "role", "create", "deploy-only", "--file", str(role_file))
    profile = controller.issue_profile("sshbob", tmp_path / "bob", roles=("deploy-only",))
    config = ssh_config(controller, profile, tmp_path)

    allowed = ssh_tool("ssh", config, f"{login_user}@web-1.fleet", "id -un")
    assert allowed.returncode == 0, allowed.stderr.decode()
    assert allowed.stdout.decode().strip() == login_user

    refused = ssh_tool("ssh", config, "root@web-1.fleet", "id -un")
    assert refused.returncode == 255
    assert refused.stdout == b""
    assert b"root" in refused.stderr and b"may not" in refused.stderr, refused.stderr.decode()

    events = controller.opsctl_json("audit", "list", "--actor", "operator:sshbob", "--outcome", "denied")
    assert any(e["action"] == "session.start" for e in events), events

    # The role grants logging in, not forwarding nor file transfer.
    request = b"GET / HTTP/1.0\r\n\r\n"
    forward = ssh_tool("ssh", config, "-W", f"127.0.0.1:{web_server}", f"{login_user}@web-1.fleet", stdin=request)
    assert forward.returncode == 255 and b"hello" not in forward.stdout
    assert b"administratively prohibited" in forward.stderr, forward.stderr.decode()
    listing = ssh_tool("sftp", config, "-b", "-", f"{login_user}@web-1.fleet", stdin=b"ls /\n")
    assert listing.returncode != 0
    assert b"subsystem request failed" in listing.stderr, listing.stderr.decode()


def test_an_expired_certificate_is_refused(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path, tmp_path: Path
) -> None:
    # A certificate the fleet's own user CA signed, for the right operator, but expired.
    user_ca = asyncssh.read_private_key(controller.state_dir / "ca" / "ssh-user-ca")
    key = asyncssh.generate_private_key("ssh-ed25519")
    cert = user_ca.generate_user_certificate(key, "admin", principals=["admin"], valid_after="-2h", valid_before="-1h")
    key.write_private_key(tmp_path / "expired")
    cert.write_certificate(tmp_path / "expired-cert.pub")
    config = tmp_path / "expired_config"
    text = admin_config.read_text()
    profile_ssh = str(controller.profile / "ssh")
    config.write_text(
        text.replace(f"{profile_ssh}/id_ed25519-cert.pub", str(tmp_path / "expired-cert.pub")).replace(
            f"{profile_ssh}/id_ed25519", str(tmp_path / "expired")
        )
    )
    assert str(tmp_path / "expired") in config.read_text()

    result = ssh_tool("ssh", config, "root@web-1.fleet", "true")
    assert result.returncode == 255
    assert b"Permission denied" in result.stderr, result.stderr.decode()


def test_ansible_runs_ping_and_shell_through_it(
    controller: Controller, fleet: dict[str, Agent], admin_config: Path, tmp_path: Path
) -> None:
    ansible = Path(PYTHON).parent / "ansible"
    if not ansible.exists():
        pytest.fail("ansible is not installed (pip install ansible-core; it is in the test extras)")
    env = {
        **BASE_ENV,
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": shutil.which("python3") or PYTHON,
    }
    common = ["-i", "web-1.fleet,", "-u", "root", "-e", f"ansible_ssh_common_args='-F {admin_config}'"]
    ping = subprocess.run(
        [str(ansible), "all", *common, "-m", "ping"], capture_output=True, text=True, env=env, timeout=120
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert '"ping": "pong"' in ping.stdout

    shell = subprocess.run(
        [str(ansible), "all", *common, "-m", "shell", "-a", "echo $((6*7))x; hostname"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert "CHANGED" in shell.stdout and "42x" in shell.stdout
