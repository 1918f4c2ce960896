"""Integration fixtures: every controller and agent started here is stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import Agent, Controller


@pytest.fixture
def make_controller(tmp_path: Path) -> Iterator[Callable[..., Controller]]:
    started: list[Controller] = []

    def make(name: str = "c1", **kwargs: object) -> Controller:
        c = Controller(tmp_path / name, name=f"controller {name}", **kwargs)  # type: ignore[arg-type]
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


@pytest.fixture
def controller(make_controller: Callable[..., Controller]) -> Controller:
    c = make_controller()
    c.start()
    return c


@pytest.fixture(scope="module")
def module_controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    """One controller shared by a module's read-mostly tests (each test leaves it as it found it)."""
    c = Controller(tmp_path_factory.mktemp("module") / "c", name="module controller")
    c.start()
    yield c
    c.stop()


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[[str], Agent]]:
    started: list[Agent] = []

    def make(name: str) -> Agent:
        a = Agent(tmp_path, name)
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop()


@pytest.fixture
def enrolled(controller: Controller, make_agent: Callable[[str], Agent]) -> Callable[..., Agent]:
    """Register and start an agent named NAME with TAGS (its activation's) on the default controller."""

    def enroll(name: str, tags: dict[str, str] | None = None, start: bool = True) -> Agent:
        activation_id, code = controller.create_activation("--limit", "1", tags=tags)
        agent = make_agent(name)
        agent.register(controller, activation_id, code)
        if start:
            agent.start()
        return agent

    return enroll
