"""The agent's Windows service against a fake of pywin32 (its ServiceFramework contract) and a fake agent.

The fake framework does what pywin32's does: ``__init__`` registers the control handler,
``ServiceCtrlHandlerEx`` dispatches STOP to ``SvcStop`` and SHUTDOWN to ``SvcShutdown``, and
``ReportServiceStatus`` is ``SetServiceStatus`` (recorded here, with the accepted controls).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fleetops.agent.link import HostRevoked
from fleetops.agent.winservice import (
    ERROR_SERVICE_SPECIFIC_ERROR,
    AgentServiceControl,
    ServiceState,
    win32_exit_codes,
)
from fleetops.common.errors import NotFound

SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN = 1, 5
SERVICE_ACCEPT_STOP, SERVICE_ACCEPT_SHUTDOWN = 1, 4


class FakeAgent:
    """Runs until request_stop (from any thread); can fail instead, or block before it is up."""

    def __init__(self, fails: BaseException | None = None) -> None:
        self.fails = fails
        self.stop_requests = 0
        self.may_start = threading.Event()
        self.may_start.set()
        self._stop = threading.Event()

    def request_stop(self) -> None:
        self.stop_requests += 1
        self._stop.set()

    async def run(self, on_started: Callable[[], None] | None = None) -> None:
        await asyncio.to_thread(self.may_start.wait, 10)
        if self.fails is not None:
            raise self.fails
        if on_started is not None:
            on_started()
        await asyncio.to_thread(self._stop.wait, 10)


@pytest.fixture
def pywin32(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """fleetops.agent.winservice.pywin32 imported against fake servicemanager/win32service/win32serviceutil."""
    statuses: list[tuple[int, int, int, int, int]] = []
    hosted: list[type[Any]] = []

    class ServiceFramework:
        def __init__(self, args: list[str]) -> None:
            self.name = args[0]
            self.handler = self.ServiceCtrlHandlerEx  # RegisterServiceCtrlHandler

        def ReportServiceStatus(
            self, serviceStatus: int, waitHint: int = 5000, win32ExitCode: int = 0, svcExitCode: int = 0
        ) -> None:
            accepted = 0 if serviceStatus == ServiceState.START_PENDING else self.GetAcceptedControls()
            statuses.append((serviceStatus, accepted, waitHint, win32ExitCode, svcExitCode))

        def GetAcceptedControls(self) -> int:
            return 0

        def ServiceCtrlHandlerEx(self, control: int, event_type: int, data: object) -> None:
            if control == SERVICE_CONTROL_STOP:
                self.SvcStop()
            elif control == SERVICE_CONTROL_SHUTDOWN:
                self.SvcShutdown()

    def start_dispatcher() -> None:
        service = hosted[-1](["fleetops-agent"])
        service.SvcRun()

    fakes = {
        "win32serviceutil": types.SimpleNamespace(ServiceFramework=ServiceFramework),
        "win32service": types.SimpleNamespace(
            SERVICE_ACCEPT_STOP=SERVICE_ACCEPT_STOP, SERVICE_ACCEPT_SHUTDOWN=SERVICE_ACCEPT_SHUTDOWN
        ),
        "servicemanager": types.SimpleNamespace(
            Initialize=lambda: None, PrepareToHostSingle=hosted.append, StartServiceCtrlDispatcher=start_dispatcher
        ),
    }
    for name, fake in fakes.items():
        monkeypatch.setitem(sys.modules, name, fake)
    monkeypatch.delitem(sys.modules, "fleetops.agent.winservice.pywin32", raising=False)
    module = importlib.import_module("fleetops.agent.winservice.pywin32")
    module.statuses = statuses  # type: ignore[attr-defined]  # for the tests' eyes
    yield module
    sys.modules.pop("fleetops.agent.winservice.pywin32", None)


def start_service(pywin32: Any, agent: FakeAgent) -> tuple[Any, threading.Thread]:
    """The service on its main thread, as StartServiceCtrlDispatcher runs it; returns (service, thread)."""
    cls = pywin32.service_class(lambda: agent)
    service = cls(["fleetops-agent"])
    thread = threading.Thread(target=service.SvcRun)
    thread.start()
    return service, thread


def wait_for_state(pywin32: Any, state: ServiceState) -> None:
    for _ in range(500):
        if any(s[0] == state for s in pywin32.statuses):
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{state.name} never reported: {pywin32.statuses}")


@pytest.mark.parametrize("control", [SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN], ids=["stop", "shutdown"])
def test_stop_and_shutdown_stop_the_agent_gracefully_with_statuses_in_order(pywin32: Any, control: int) -> None:
    agent = FakeAgent()
    service, thread = start_service(pywin32, agent)
    wait_for_state(pywin32, ServiceState.RUNNING)
    service.handler(control, 0, None)
    thread.join(10)
    assert not thread.is_alive()
    assert agent.stop_requests == 1
    accepts = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
    assert pywin32.statuses == [
        (ServiceState.START_PENDING, 0, 30_000, 0, 0),
        (ServiceState.RUNNING, accepts, 0, 0, 0),
        (ServiceState.STOP_PENDING, accepts, 30_000, 0, 0),
        (ServiceState.STOPPED, accepts, 0, 0, 0),
    ]


def test_a_stop_while_starting_never_reports_running(pywin32: Any) -> None:
    agent = FakeAgent()
    agent.may_start.clear()  # still loading its identity and recovering the journal
    service, thread = start_service(pywin32, agent)
    wait_for_state(pywin32, ServiceState.START_PENDING)
    service.handler(SERVICE_CONTROL_STOP, 0, None)
    agent.may_start.set()
    thread.join(10)
    assert [s[0] for s in pywin32.statuses] == [
        ServiceState.START_PENDING,
        ServiceState.STOP_PENDING,
        ServiceState.STOPPED,
    ]
    assert agent.stop_requests == 1


def test_a_second_stop_and_a_shutdown_after_it_are_ignored(pywin32: Any) -> None:
    agent = FakeAgent()
    service, thread = start_service(pywin32, agent)
    wait_for_state(pywin32, ServiceState.RUNNING)
    service.handler(SERVICE_CONTROL_STOP, 0, None)
    service.handler(SERVICE_CONTROL_SHUTDOWN, 0, None)
    thread.join(10)
    service.handler(SERVICE_CONTROL_STOP, 0, None)  # after STOPPED
    assert [s[0] for s in pywin32.statuses].count(ServiceState.STOP_PENDING) == 1
    assert agent.stop_requests == 1


def test_an_agent_that_cannot_run_stops_with_a_service_specific_error(pywin32: Any) -> None:
    agent = FakeAgent(fails=NotFound("this host is not registered", "register it"))
    _, thread = start_service(pywin32, agent)
    thread.join(10)
    assert pywin32.statuses[-1] == (
        ServiceState.STOPPED,
        SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN,
        0,
        ERROR_SERVICE_SPECIFIC_ERROR,
        NotFound.exit_code,
    )
    assert ServiceState.RUNNING not in [s[0] for s in pywin32.statuses]


def test_the_dispatcher_hosts_the_service_class(pywin32: Any) -> None:
    agent = FakeAgent(fails=RuntimeError("boom"))
    pywin32.dispatch(lambda: agent)
    assert pywin32.statuses[-1][0] == ServiceState.STOPPED
    assert pywin32.statuses[-1][3:] == (ERROR_SERVICE_SPECIFIC_ERROR, 1)


# -- AgentServiceControl without pywin32 -------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.reported: list[tuple[ServiceState, int]] = []

    def report(self, state: ServiceState, *, wait_hint_ms: int = 0, exit_code: int = 0) -> None:
        self.reported.append((state, exit_code))


def test_a_revoked_host_stops_cleanly_so_recovery_actions_do_not_restart_it() -> None:
    recorder = Recorder()
    agent = FakeAgent(fails=HostRevoked("the controller revoked this host", "register the host again"))
    assert AgentServiceControl(recorder, lambda: agent).run() == 0
    assert recorder.reported == [(ServiceState.START_PENDING, 0), (ServiceState.STOPPED, 0)]


def test_an_agent_that_cannot_be_built_reports_stopped_with_an_error() -> None:
    recorder = Recorder()

    def broken() -> FakeAgent:
        raise OSError("state directory unreadable")

    assert AgentServiceControl(recorder, broken).run() == 1
    assert recorder.reported == [(ServiceState.START_PENDING, 0), (ServiceState.STOPPED, 1)]


def test_a_stop_before_the_service_main_ran_still_ends_in_stopped() -> None:
    recorder = Recorder()
    agent = FakeAgent()
    control = AgentServiceControl(recorder, lambda: agent)
    control.stop()
    assert control.run() == 0
    assert recorder.reported == [(ServiceState.STOP_PENDING, 0), (ServiceState.STOPPED, 0)]
    assert agent.stop_requests == 1


def test_exit_codes_map_to_win32_fields() -> None:
    assert win32_exit_codes(0) == (0, 0)
    assert win32_exit_codes(4) == (ERROR_SERVICE_SPECIFIC_ERROR, 4)


def test_the_service_subcommand_refuses_to_run_off_windows(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleetops.agent import cli as agent_cli
    from fleetops.common.errors import InvalidInput

    monkeypatch.setattr(agent_cli, "configure_logging", lambda *a, **k: None)
    monkeypatch.setattr(agent_cli.os, "name", "posix")
    assert agent_cli.main(["--state-dir", str(tmp_path), "service"]) == InvalidInput.exit_code
    assert "fleetops-agent run" in capsys.readouterr().err
