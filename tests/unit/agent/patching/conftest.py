"""Shared helpers for the patch-provider tests: recorded fixtures and a fake CommandRunner."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fleetops.agent.patching.interfaces import CommandResult

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "patching"


@dataclass
class _Rule:
    prefix: tuple[str, ...]
    result: CommandResult | BaseException
    times: int | None  # None: forever


@dataclass
class FakeRunner:
    """Answers commands by argv prefix, first matching rule first; records every call.

    A rule with ``times`` answers that many calls and is then used up, so a test can give the
    scan before an install and the scan after it different outputs.
    """

    rules: list[_Rule] = field(default_factory=list)
    calls: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)

    def on(
        self,
        *prefix: str,
        stdout: str = "",
        stderr: str = "",
        exit_code: int = 0,
        raises: BaseException | None = None,
        times: int | None = None,
    ) -> FakeRunner:
        result = raises if raises is not None else CommandResult(exit_code, stdout, stderr)
        self.rules.append(_Rule(prefix, result, times))
        return self

    async def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> CommandResult:
        self.calls.append((list(argv), dict(env or {})))
        for rule in self.rules:
            if tuple(argv[: len(rule.prefix)]) == rule.prefix and rule.times != 0:
                if rule.times is not None:
                    rule.times -= 1
                if isinstance(rule.result, BaseException):
                    raise rule.result
                return rule.result
        raise AssertionError(f"unexpected command: {list(argv)}")

    def argvs(self, *prefix: str) -> list[list[str]]:
        """The argvs called that start with ``prefix``."""
        return [argv for argv, _ in self.calls if tuple(argv[: len(prefix)]) == prefix]


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def fixture_text() -> Callable[[str, str], str]:
    """Reads tests/fixtures/patching/<provider>/<name>."""

    def read(provider: str, name: str) -> str:
        return (FIXTURES / provider / name).read_text(encoding="utf-8")

    return read
