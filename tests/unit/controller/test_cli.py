"""``fleetops-controller``: dev takes serve's timeouts and limits, from one definition."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller import cli
from fleetops.controller.settings import ControllerSettings

SHARED = [
    "--heartbeat-interval",
    "5s",
    "--host-cert-lifetime",
    "1h",
    "--command-ack-timeout",
    "30s",
    "--session-idle-timeout",
    "5m",
    "--session-max-duration",
    "1h",
    "--transcript-upload-interval",
    "10s",
    "--window-min-duration",
    "1m",
    "--audit-checkpoint-interval",
    "10m",
    "--lockout-after",
    "3",
]


def parsed(*argv: str) -> argparse.Namespace:
    """The namespace ``fleetops-controller ARGV`` parses to (main stops right after parsing)."""
    seen: dict[str, argparse.Namespace] = {}

    def capture(args: argparse.Namespace) -> int:
        seen["args"] = args
        return 0

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "_run", capture)
        mp.setattr(cli, "configure_logging", lambda *a: None)
        assert cli.main(list(argv)) == 0
    return seen["args"]


def options(command: str) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    target = sub.add_parser(command)
    if command == "serve":
        cli._server_options(target)
    else:
        cli._controller_settings(target)
    return {s for a in target._actions for s in a.option_strings}


def test_dev_and_serve_give_the_same_settings() -> None:
    dev = cli.controller_settings(parsed("dev", *SHARED))
    serve = cli.settings_from(parsed("serve", *SHARED))
    assert dev["window_min_duration"] == 60 and dev["session_idle_timeout"] == 300
    assert dev["enroll_throttle"].lockout_after == 3
    for name, value in dev.items():
        assert getattr(serve, name) == value, name
    assert ControllerSettings(state_dir=Path("x"), **dev).heartbeat_interval == 5


def test_every_shared_option_is_on_both() -> None:
    shared = options("dev")
    assert {"--window-min-duration", "--session-idle-timeout", "--heartbeat-interval", "--enroll-burst"} <= shared
    assert shared <= options("serve")


def test_dev_defaults_are_serves() -> None:
    assert cli.controller_settings(parsed("dev")) == cli.controller_settings(parsed("serve"))
    defaults = ControllerSettings(state_dir=Path("x"))
    assert cli.controller_settings(parsed("dev"))["window_min_duration"] == defaults.window_min_duration


def test_an_out_of_range_value_names_its_flag() -> None:
    with pytest.raises(InvalidInput, match="--heartbeat-interval must be at least 1s"):
        cli.controller_settings(parsed("dev", "--heartbeat-interval", "0"))
