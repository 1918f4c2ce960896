"""The agent's Debian package on this machine: paths, skips, dpkg, and the unit's command line.

Shared by tests/integration/test_agent_package.py and test_agent_update.py.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "fleetops-agent"
VENV = Path("/opt/fleetops-agent")
STATE = Path("/var/lib/fleetops-agent")
UNIT = Path("/usr/lib/systemd/system/fleetops-agent.service")
ENV_FILE = Path("/etc/fleetops/agent.env")
WANTS = Path("/etc/systemd/system/multi-user.target.wants/fleetops-agent.service")
CONTROLLER_ONLY = ("sqlalchemy", "alembic", "starlette", "uvicorn", "asyncpg", "aiosqlite", "obstore", "jinja2")
HINT = (
    "the agent package install test installs a .deb on this machine: run it as root on Debian or Ubuntu with "
    "dpkg, deb-systemd-helper and python3 (>= 3.11) with python3-venv (apt-get install python3-venv), "
    "which CI does; set FLEETOPS_REQUIRE_DEB=1 to fail instead of skipping."
)
#: systemd's environment for a system service (no inherited variables), before the unit's own.
SYSTEMD_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def skip_or_fail(reason: str) -> None:
    if os.environ.get("FLEETOPS_REQUIRE_DEB") == "1":
        pytest.fail(f"FLEETOPS_REQUIRE_DEB=1 but {reason}. {HINT}")
    pytest.skip(f"{reason}. {HINT}")


def host_python() -> str:
    """The X.Y of the python3 the package's postinst will use."""
    result = subprocess.run(
        ["python3", "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, env=SYSTEMD_ENV, check=False,
    )  # fmt: skip
    return result.stdout.strip()


def dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    """dpkg ARGS, waiting out another dpkg (a patch test in a parallel run) holding the lock."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    deadline = time.monotonic() + 120
    while True:
        result = subprocess.run(["dpkg", *args], capture_output=True, text=True, env=env, timeout=300, check=False)
        if result.returncode == 0 or "lock" not in result.stderr or time.monotonic() > deadline:
            return result
        time.sleep(1)


def installed() -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", PACKAGE], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() not in ("", "not-installed")


def service_command(unit: Path) -> tuple[list[str], dict[str, str], str]:
    """(argv, environment, user) as systemd would start ``unit``'s [Service]: ExecStart, Environment(File), User."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(unit.read_text())
    service = parser["Service"]
    env = dict(SYSTEMD_ENV)
    for assignment in shlex.split(service.get("Environment", "")):
        key, _, value = assignment.partition("=")
        env[key] = value
    for env_file in service.get("EnvironmentFile", "").split():
        path = Path(env_file.removeprefix("-"))
        if not path.exists():
            assert env_file.startswith("-"), f"{path} is required by the unit but missing"
            continue
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                env[key.strip()] = " ".join(shlex.split(value))
    argv: list[str] = []
    for word in shlex.split(service["ExecStart"]):
        var = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        argv += env.get(var.group(1), "").split() if var else [word]
    return argv, env, service.get("User", "root")
