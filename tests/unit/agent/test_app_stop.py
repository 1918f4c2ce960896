"""Agent.request_stop: the graceful stop a Windows service (or any thread) asks for, as SIGTERM does."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from fleetops.agent.app import Agent, AgentSettings


def quiet_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Agent, list[str]]:
    """An Agent whose identity, SSH key, journal recovery and link are stand-ins; records what ran."""
    agent = Agent(AgentSettings(tmp_path))
    events: list[str] = []

    async def recover() -> None:
        events.append("recovered")

    async def link_run() -> None:
        events.append("link running")
        await agent.link._stop.wait()
        events.append("link stopped")

    async def close() -> None:
        events.append("closed")

    monkeypatch.setattr(agent.state, "load", lambda: None)
    monkeypatch.setattr(agent, "_enable_ssh", lambda: None)
    monkeypatch.setattr(agent, "_install_stop_signals", lambda loop: None)
    monkeypatch.setattr(agent.commands, "recover", recover)
    monkeypatch.setattr(agent.commands, "close", close)
    monkeypatch.setattr(agent.link, "run", link_run)
    return agent, events


async def test_a_stop_from_another_thread_ends_run_through_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, events = quiet_agent(tmp_path, monkeypatch)
    started = threading.Event()
    run = asyncio.create_task(agent.run(on_started=started.set))
    await asyncio.to_thread(started.wait, 5)
    await asyncio.sleep(0.05)
    await asyncio.to_thread(agent.request_stop)
    await asyncio.wait_for(run, 5)
    assert events == ["recovered", "link running", "link stopped", "closed"]


async def test_a_stop_before_run_makes_run_stop_once_it_is_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent, events = quiet_agent(tmp_path, monkeypatch)
    agent.request_stop()
    started: list[bool] = []
    await asyncio.wait_for(agent.run(on_started=lambda: started.append(True)), 5)
    # The journal is still recovered and everything closed: a stop while starting is a normal stop.
    assert started == [True]
    assert events == ["recovered", "link running", "link stopped", "closed"]


async def test_a_stop_after_run_returned_is_harmless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent, events = quiet_agent(tmp_path, monkeypatch)
    agent.request_stop()
    await asyncio.wait_for(agent.run(), 5)
    before = list(events)
    agent.request_stop()  # the loop is closed: nothing is scheduled, nothing raises
    await asyncio.sleep(0)
    assert events == before == ["recovered", "link running", "link stopped", "closed"]
