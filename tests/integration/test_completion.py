"""``opsctl completion bash``: the script bash loads, completing commands, choices and host names from a
real controller, the way a user's TAB does."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import PYTHON, Agent, Controller, run

BIN = str(Path(PYTHON).parent)  # where the installed `opsctl` is, as on a user's PATH
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run([PYTHON, "-m", "fleetops.opsctl", "completion", "bash"])
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("completion") / "opsctl.bash"
    path.write_text(result.stdout)
    return path


def complete(script: Path, words: list[str], profile: Path | str) -> list[str]:
    """What bash offers for the last of ``words`` (COMP_WORDS as bash splits the line)."""
    words_text = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({words_text}); COMP_CWORD={len(words) - 1}; COMPREPLY=()\n"
        "_shtab_opsctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "OPSCTL_PROFILE": str(profile)}
    result = subprocess.run(["bash", "-c", program], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_the_bash_script_is_valid_bash(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_commands_and_choices_complete(script: Path, tmp_path: Path) -> None:
    assert complete(script, ["opsctl", "ses"], tmp_path) == ["session"]
    assert complete(script, ["opsctl", "window", "task", ""], tmp_path) == ["add", "list", "remove"]
    assert complete(script, ["opsctl", "window", "list", "-o", ""], tmp_path) == ["text", "json"]
    assert complete(script, ["opsctl", "completion", ""], tmp_path) == ["bash", "zsh", "fish"]


def test_host_names_complete_from_the_controller(script: Path, module_controller: Controller, tmp_path: Path) -> None:
    for name in ("web-1", "web-2", "db-1"):
        activation_id, code = module_controller.create_activation()
        Agent(tmp_path, name).register(module_controller, activation_id, code)
    profile = module_controller.profile
    assert complete(script, ["opsctl", "run", "--host", "we"], profile) == ["web-1", "web-2"]
    assert complete(script, ["opsctl", "session", "connect", ""], profile) == ["db-1", "web-1", "web-2"]
    assert complete(script, ["opsctl", "patch", "compliance", "--host", "d"], profile) == ["db-1"]


def test_a_controller_that_does_not_answer_costs_the_deadline_and_completes_nothing(
    script: Path, module_controller: Controller, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    shutil.copytree(module_controller.profile, profile)
    with socket.socket() as silent:  # accepts connections (the kernel does), never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        (profile / "profile.json").write_text(json.dumps({"controller": address, "operator": "admin"}))
        started = time.monotonic()
        assert complete(script, ["opsctl", "run", "--host", ""], profile) == []
        assert time.monotonic() - started < 2 + 5  # the 2 s deadline, and the start of python
    assert complete(script, ["opsctl", "run", "--host", ""], tmp_path / "no-such-profile") == []
