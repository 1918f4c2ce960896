"""Unit tests of the real subprocess runner and the install steps providers share."""

from __future__ import annotations

import sys

import pytest

from fleetops.agent.patching.interfaces import CommandResult
from fleetops.agent.patching.models import Package, ScanResult, Update
from fleetops.agent.patching.outcomes import judge_by_rescan, requested_names, run_installs
from fleetops.agent.patching.process import SubprocessRunner
from fleetops.common.errors import InvalidInput, Unavailable


async def test_subprocess_runner_captures_output_exit_code_and_env() -> None:
    code = "import os, sys; print(os.environ['FLEETOPS_X']); print('err', file=sys.stderr); sys.exit(3)"
    result = await SubprocessRunner().run([sys.executable, "-c", code], env={"FLEETOPS_X": "42"}, timeout=30)
    assert result == CommandResult(3, "42\n", "err\n")


async def test_subprocess_runner_missing_program_and_timeout_are_unavailable() -> None:
    with pytest.raises(Unavailable, match="is not installed"):
        await SubprocessRunner().run(["fleetops-no-such-program-xyz"], timeout=5)
    with pytest.raises(Unavailable, match="did not finish within 0.2 s"):
        await SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.2)


def test_requested_names_keep_order_and_drop_repeats() -> None:
    assert requested_names(["b", "a", "b"]) == ["b", "a"]
    for bad in ([""], ["  "], ["a\x00b"], ["x\r"], [None]):
        with pytest.raises(InvalidInput):
            requested_names(bad)  # type: ignore[arg-type]


class Recorder:
    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.calls: list[list[str]] = []

    async def run(self, argv, *, env=None, timeout=None) -> CommandResult:
        self.calls.append(list(argv))
        return CommandResult(1 if self.failing & set(argv) else 0, "", "")


async def test_run_installs_retries_singly_after_a_failed_batch() -> None:
    recorder = Recorder({"b"})
    failures = await run_installs(
        recorder, {"a": ["a"], "b": ["b"]}, lambda args: ["pm", *args], lambda r: "bad" if r.exit_code else None,
        env={}, timeout=1,
    )  # fmt: skip
    assert recorder.calls == [["pm", "a", "b"], ["pm", "a"], ["pm", "b"]]
    assert failures == {"b": "bad"}
    assert await run_installs(recorder, {}, lambda a: a, lambda r: None, env={}, timeout=1) == {}


def test_judge_by_rescan_catches_a_package_that_disappeared() -> None:
    before = ScanResult("linux", "apt", (Package("a", "1", "amd64"),), (Update("a", "1", "2", "amd64", ""),), False)
    after = ScanResult("linux", "apt", (), (), False)
    (outcome,) = judge_by_rescan(["a"], before, after, {})
    assert (outcome.state, outcome.message) == ("failed", "a is no longer installed after the install")
    still = ScanResult("linux", "apt", before.installed, before.updates, False)
    (outcome,) = judge_by_rescan(["a"], before, still, {})
    assert outcome.message == "a is still at 1; 2 was not installed"
