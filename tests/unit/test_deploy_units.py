"""deploy/ says what the code does: console scripts, subcommands, flags, state directories, exit codes.

The systemd units are read with configparser (close enough to systemd's syntax for these files:
no line continuations, no inline comments); every command line they hold is handed to the real
``main()`` of the program it starts, with only the part that would start serving replaced.
"""

from __future__ import annotations

import configparser
import importlib.util
import plistlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fleetops.agent import cli as agent_cli
from fleetops.agent.link import HostRevoked
from fleetops.agent.state import AgentState
from fleetops.controller import cli as controller_cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_BIN = "/opt/fleetops/bin/"
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


class _MultiDict(dict):  # type: ignore[type-arg]
    """Option storage that keeps every value of a repeated key (systemd allows them)."""

    def __setitem__(self, key: str, value: Any) -> None:
        # While reading, configparser stores each option as a list of lines: extend instead of replace.
        if isinstance(value, list) and key in self:
            dict.__getitem__(self, key).extend(value)
        else:
            super().__setitem__(key, value)


Unit = dict[str, dict[str, list[str]]]


def load_unit(name: str, text: str | None = None) -> Unit:
    """The unit ``deploy/systemd/NAME`` (or ``text``, as that unit) as {section: {key: [values]}}."""
    parser = configparser.ConfigParser(
        strict=False,
        interpolation=None,
        dict_type=_MultiDict,
        empty_lines_in_values=False,  # type: ignore[arg-type]
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    text = (DEPLOY / "systemd" / name).read_text() if text is None else text
    assert not re.search(r"\\\n", text), f"{name}: keep lines unbroken (configparser cannot follow '\\' continuations)"
    parser.read_string(text, source=name)
    return {
        section: {key: parser[section][key].split("\n") for key in parser[section]} for section in parser.sections()
    }


def single(unit: Unit, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values is not None, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is given {len(values)} times"
    return values[0]


def env_file_variants(path: Path, key: str) -> list[str]:
    """Values of ``key`` in an EnvironmentFile: the active one first, then each '#KEY=...' alternative."""
    active: list[str] = []
    alternatives: list[str] = []
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"(#?)" + re.escape(key) + r"=(.*)", line.strip())
        if not match:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        (alternatives if match.group(1) else active).append(value)
    assert len(active) <= 1, f"{path.name}: {key} is set {len(active)} times"
    return active + alternatives


def exec_argv(unit: Unit, env: dict[str, str] | None = None) -> list[str]:
    """ExecStart= as an argv, expanding "$VAR" words the way systemd does (split at whitespace)."""
    words = shlex.split(single(unit, "Service", "ExecStart"))
    argv: list[str] = []
    for word in words:
        var = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if var:
            argv += (env or {}).get(var.group(1), "").split()
        else:
            assert "$" not in word, f"unsupported variable use in ExecStart: {word!r}"
            argv.append(word)
    return argv


def with_help(argv: list[str], subcommand: str) -> list[str]:
    """``argv`` (without the binary) asking the subcommand's parser for --help."""
    at = argv.index(subcommand)
    return argv[: at + 1] + ["--help"] + argv[at + 1 :]


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} given {argv.count(name)} times in {argv}"
    return argv[argv.index(name) + 1]


def console_script(path: str, script: str, module: Any) -> None:
    """``path`` runs the console script ``script``, whose entry point is ``module.main``."""
    assert path == INSTALL_BIN + script
    assert SCRIPTS[script] == f"{module.__name__}:main"


@pytest.fixture
def no_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() reconfigures the root logger; pytest's log capture must keep its handlers.
    monkeypatch.setattr(controller_cli, "configure_logging", lambda *a, **k: None)
    monkeypatch.setattr(agent_cli, "configure_logging", lambda *a, **k: None)


class FakeAgent:
    """Stands in for fleetops.agent.app.Agent: records what `run` would serve, or raises."""

    started: list[Path] = []
    raises: BaseException | None = None

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    async def run(self) -> None:
        FakeAgent.started.append(self.settings.state_dir)
        if FakeAgent.raises is not None:
            raise FakeAgent.raises


@pytest.fixture
def fake_agent(monkeypatch: pytest.MonkeyPatch, no_logging_setup: None) -> type[FakeAgent]:
    FakeAgent.started, FakeAgent.raises = [], None
    monkeypatch.setattr(agent_cli, "Agent", FakeAgent)
    return FakeAgent


def parse_controller(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> Any:
    """Run the real controller main() on ``argv`` up to the point where it would act; returns its args."""
    seen: list[Any] = []
    monkeypatch.setattr(controller_cli, "_run", lambda args: seen.append(args) or 0)
    assert controller_cli.main(argv) == 0
    return seen[0]


# -- controller ------------------------------------------------------------------------------


CONTROLLER = load_unit("fleetops-controller.service")
CONTROLLER_ENV = DEPLOY / "systemd" / "fleetops-controller.env"


def test_controller_unit_runs_serve_from_the_venv_with_its_state_directory() -> None:
    argv = exec_argv(CONTROLLER)
    console_script(argv[0], "fleetops-controller", controller_cli)
    assert argv[1] == "serve"
    state_dir = "/var/lib/" + single(CONTROLLER, "Service", "StateDirectory")
    assert flag(argv, "--state-dir") == state_dir == str(controller_cli.DEFAULT_STATE_DIR)
    assert state_dir in CONTROLLER["Service"]["ReadWritePaths"]


def test_controller_unit_runs_unprivileged_and_sandboxed() -> None:
    service = CONTROLLER["Service"]
    assert single(CONTROLLER, "Service", "User") == "fleetops"
    assert single(CONTROLLER, "Service", "CapabilityBoundingSet") == ""
    assert single(CONTROLLER, "Service", "NoNewPrivileges") == "yes"
    assert single(CONTROLLER, "Service", "ProtectSystem") == "strict"
    assert set(single(CONTROLLER, "Service", "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "MemoryDenyWriteExecute" not in service  # see the comment in the unit
    assert single(CONTROLLER, "Service", "Restart") == "on-failure"
    # serve() stops cleanly on SIGTERM (and SIGINT) only.
    assert single(CONTROLLER, "Service", "KillSignal") == "SIGTERM"
    assert "network-online.target" in single(CONTROLLER, "Unit", "After").split()
    assert "network-online.target" in single(CONTROLLER, "Unit", "Wants").split()
    assert single(CONTROLLER, "Install", "WantedBy") == "multi-user.target"


def test_controller_unit_does_not_restart_a_configuration_error() -> None:
    # serve refuses to start on a failing object store with EX_CONFIG unless --allow-degraded-storage.
    from fleetops.controller.objects.interfaces import EXIT_CONFIG

    assert str(EXIT_CONFIG) in single(CONTROLLER, "Service", "RestartPreventExitStatus").split()


def test_controller_unit_reads_the_documented_environment_file() -> None:
    env_file = single(CONTROLLER, "Service", "EnvironmentFile")
    assert env_file == "-/etc/fleetops/controller.env"  # '-': optional
    assert "$FLEETOPS_CONTROLLER_ARGS" in single(CONTROLLER, "Service", "ExecStart").split()
    assert CONTROLLER_ENV.exists()


@pytest.mark.parametrize(
    "extra_args",
    [None] + env_file_variants(CONTROLLER_ENV, "FLEETOPS_CONTROLLER_ARGS"),
    ids=lambda value: "no environment file" if value is None else value,
)
def test_controller_command_line_is_accepted_by_the_real_parser(
    monkeypatch: pytest.MonkeyPatch, no_logging_setup: None, extra_args: str | None
) -> None:
    env = {} if extra_args is None else {"FLEETOPS_CONTROLLER_ARGS": extra_args}
    argv = exec_argv(CONTROLLER, env)
    args = parse_controller(monkeypatch, argv[1:])
    assert args.command == "serve"
    settings = controller_cli.settings_from(args)
    assert str(settings.state_dir) == "/var/lib/fleetops-controller"
    sans = [argv[i + 1] for i, word in enumerate(argv) if word == "--san"]
    if sans:
        assert set(sans) == set(settings.server_dns_names) | set(settings.server_ip_addresses)
    if "--database-url" in argv:
        assert settings.database_url.startswith("postgresql")


def test_controller_subcommand_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        controller_cli.main(with_help(exec_argv(CONTROLLER)[1:], "serve"))
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--san" in out and "--database-url" in out


# -- agent -----------------------------------------------------------------------------------


AGENT = load_unit("fleetops-agent.service")


def test_agent_unit_runs_run_from_the_venv_as_root_with_its_state_directory() -> None:
    argv = exec_argv(AGENT)
    console_script(argv[0], "fleetops-agent", agent_cli)
    assert argv[-1] == "run"
    state_dir = "/var/lib/" + single(AGENT, "Service", "StateDirectory")
    assert flag(argv, "--state-dir") == state_dir
    assert single(AGENT, "Service", "StateDirectoryMode") == "0700"
    assert "User" not in AGENT["Service"]  # root: it runs commands and shells as any user
    # Skipped, not failing in a loop, until `fleetops-agent register` wrote the identity.
    assert single(AGENT, "Unit", "ConditionPathExists") == str(AgentState(Path(state_dir)).meta)


def test_agent_unit_does_not_restart_a_revoked_host() -> None:
    assert single(AGENT, "Service", "Restart") == "always"
    assert single(AGENT, "Service", "RestartSec") == "5"
    assert str(agent_cli.EXIT_REVOKED) in single(AGENT, "Service", "RestartPreventExitStatus").split()
    # Commands survive an agent restart and are adopted from the journal (see the unit's comment).
    assert single(AGENT, "Service", "KillMode") == "process"
    assert "network-online.target" in single(AGENT, "Unit", "After").split()
    assert single(AGENT, "Install", "WantedBy") == "multi-user.target"


def test_agent_command_line_is_accepted_by_the_real_parser(fake_agent: type[FakeAgent]) -> None:
    assert agent_cli.main(exec_argv(AGENT)[1:]) == 0
    assert fake_agent.started == [Path("/var/lib/fleetops-agent")]


def test_agent_exits_with_the_status_the_unit_refuses_to_restart(
    fake_agent: type[FakeAgent], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_agent.raises = HostRevoked("the controller revoked this host: deregistered", "register the host again")
    status = agent_cli.main(exec_argv(AGENT)[1:])
    assert status == agent_cli.EXIT_REVOKED
    assert str(status) in single(AGENT, "Service", "RestartPreventExitStatus").split()
    assert "revoked" in capsys.readouterr().err


def test_agent_subcommand_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        agent_cli.main(with_help(exec_argv(AGENT)[1:], "run"))
    assert exit_info.value.code == 0
    assert "usage: fleetops-agent" in capsys.readouterr().out


AGENT_ENV = DEPLOY / "systemd" / "fleetops-agent.env"


def test_agent_unit_reads_the_documented_environment_file() -> None:
    assert single(AGENT, "Service", "EnvironmentFile") == "-/etc/fleetops/agent.env"  # '-': optional
    argv = shlex.split(single(AGENT, "Service", "ExecStart"))
    # Global options: before the subcommand (unbraced, so systemd splits the value into words).
    assert argv.index("$FLEETOPS_AGENT_ARGS") == argv.index("run") - 1


@pytest.mark.parametrize(
    "extra_args",
    [None] + env_file_variants(AGENT_ENV, "FLEETOPS_AGENT_ARGS"),
    ids=lambda value: "no environment file" if value is None else repr(value),
)
def test_agent_command_line_with_its_environment_file_is_accepted(
    fake_agent: type[FakeAgent], extra_args: str | None
) -> None:
    env = {} if extra_args is None else {"FLEETOPS_AGENT_ARGS": extra_args}
    assert agent_cli.main(exec_argv(AGENT, env)[1:]) == 0
    assert fake_agent.started == [Path("/var/lib/fleetops-agent")]


# -- the Debian package ----------------------------------------------------------------------


def build_agent_deb() -> Any:
    """scripts/build_agent_deb.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_agent_deb", ROOT / "scripts" / "build_agent_deb.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packaged_agent_unit_differs_only_in_the_virtualenv() -> None:
    deb = build_agent_deb()
    text = (DEPLOY / "systemd" / "fleetops-agent.service").read_text()
    packaged = load_unit("fleetops-agent.service", deb.packaged_unit(text))
    argv = exec_argv(packaged)
    assert argv[0] == deb.VENV + "/bin/fleetops-agent" == "/opt/fleetops-agent/bin/fleetops-agent"
    assert argv[1:] == exec_argv(AGENT)[1:]
    for section, keys in AGENT.items():
        for key, values in keys.items():
            if key != "ExecStart":
                assert packaged[section][key] == values, f"[{section}] {key}="
    assert single(packaged, "Service", "EnvironmentFile") == "-" + deb.ENV_PATH


def test_package_depends_on_the_python_the_project_requires() -> None:
    deb = build_agent_deb()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    control = deb.control_file("0.1.0-1", "amd64", 1, list(deb.DEFAULT_PYTHONS))
    assert f"Depends: python3 ({requires.replace('>=', '>= ')}), python3-venv\n" in control
    assert deb.project_version() == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# -- macOS and Windows -----------------------------------------------------------------------


MACOS = DEPLOY / "macos"
AGENT_VENV_BIN = "/opt/fleetops-agent/bin/"  # the agent-only virtualenv the installers make


def load_plist() -> dict[str, Any]:
    with (MACOS / "com.fleetops.agent.plist").open("rb") as f:
        plist: dict[str, Any] = plistlib.load(f)
    return plist


def shell_assignment(script: str, name: str) -> str:
    match = re.search(rf"^{name}=(.*)$", script, re.MULTILINE)
    assert match, f"{name}= not found"
    return shlex.split(match.group(1))[0]


def test_launchd_plist_meets_launchds_contract() -> None:
    plist = load_plist()
    # launchd.plist(5): Label unique and the file named after it; ProgramArguments without Program:
    # argv[0] is the program and must be absolute (launchd does no PATH lookup for daemons).
    assert plist["Label"] == "com.fleetops.agent" == (MACOS / "com.fleetops.agent.plist").stem
    assert "Program" not in plist
    argv = plist["ProgramArguments"]
    assert all(isinstance(word, str) for word in argv) and argv[0].startswith("/")
    assert plist["RunAtLoad"] is True
    # Restarted when it exits non-zero (a crash), not after a clean exit; at most every 30 s.
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ThrottleInterval"] == 30
    # The agent stops cleanly on SIGTERM within the systemd unit's TimeoutStopSec.
    assert plist["ExitTimeOut"] == int(single(AGENT, "Service", "TimeoutStopSec"))
    assert plist["StandardOutPath"] == plist["StandardErrorPath"] == "/Library/Logs/fleetops-agent.log"
    assert plist["Umask"] == 0o077
    assert "UserName" not in plist  # root, like the systemd unit
    assert set(plist) <= {
        "Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "ThrottleInterval", "ExitTimeOut", "Umask",
        "StandardOutPath", "StandardErrorPath",
    }  # fmt: skip


def test_launchd_plist_runs_the_agent(fake_agent: type[FakeAgent]) -> None:
    argv = load_plist()["ProgramArguments"]
    assert argv[0] == AGENT_VENV_BIN + "fleetops-agent"
    assert SCRIPTS["fleetops-agent"] == f"{agent_cli.__name__}:main"
    assert argv[-1] == "run"
    assert flag(argv, "--state-dir") == "/Library/Application Support/fleetops-agent"
    assert agent_cli.main(argv[1:]) == 0
    assert fake_agent.started == [Path("/Library/Application Support/fleetops-agent")]


def test_macos_installer_agrees_with_the_plist() -> None:
    script = (MACOS / "install-agent.sh").read_text()
    plist = load_plist()
    assert shell_assignment(script, "LABEL") == plist["Label"]
    assert shell_assignment(script, "VENV") + "/bin/fleetops-agent" == plist["ProgramArguments"][0]
    assert shell_assignment(script, "STATE") == flag(plist["ProgramArguments"], "--state-dir")
    assert shell_assignment(script, "PLIST") == "/Library/LaunchDaemons/$LABEL.plist"
    assert 'launchctl bootstrap system "$PLIST"' in script
    assert 'launchctl bootout "system/$LABEL"' in script
    assert "--no-deps" in script and "../agent-requirements.txt" in script
    assert 'install -d -o root -g wheel -m 0700 "$STATE"' in script


def test_windows_installer_registers_the_service_command(capsys: pytest.CaptureFixture[str]) -> None:
    script = (DEPLOY / "windows" / "install.ps1").read_text()
    assert '[string]$StateDir = "C:\\ProgramData\\fleetops-agent"' in script
    assert '[string]$ServiceName = "fleetops-agent"' in script
    from fleetops.agent.winservice import SERVICE_NAME

    assert SERVICE_NAME == "fleetops-agent"
    # The service's command line: the launcher hands everything after it to fleetops-agent's main().
    assert '--state-dir `"$StateDir`" service"' in script
    assert "from fleetops.agent.cli import main" in script and "sys.exit(main(sys.argv[1:]))" in script
    assert agent_cli.main.__module__ == "fleetops.agent.cli"  # what the launcher imports
    with pytest.raises(SystemExit) as exit_info:  # and its arguments parse
        agent_cli.main(["--state-dir", "C:\\ProgramData\\fleetops-agent", "service", "--help"])
    assert exit_info.value.code == 0
    assert "sc.exe failure $ServiceName reset= 86400 actions= restart/" in script
    assert "sc.exe failureflag $ServiceName 1" in script
    assert "--no-deps $Wheel" in script and '"..\\agent-requirements.txt"' in script
    assert "sc.exe delete $ServiceName" in script and "$Purge" in script
