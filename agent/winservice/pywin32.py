"""The agent's Windows service on pywin32: ``win32serviceutil.ServiceFramework`` around ``AgentServiceControl``.

Only ``fleetops-agent service`` imports this module, on Windows with pywin32 installed (the agent's
requirements pull it there). pywin32's contract, as used here:

- ``servicemanager.PrepareToHostSingle(cls)`` and ``StartServiceCtrlDispatcher()`` make this process
  the service the SCM started; the framework instantiates ``cls([service_name])``, whose
  ``ServiceFramework.__init__`` registers ``ServiceCtrlHandlerEx`` as the control handler.
- The framework calls ``SvcRun`` on the service's main thread. pywin32's own ``SvcRun`` reports
  "running" before ``SvcDoRun`` has done anything; ours lets ``AgentServiceControl`` report
  "running" only once the agent is up, and "stopped" with the exit code.
- ``ServiceCtrlHandlerEx`` calls ``SvcStop`` for SERVICE_CONTROL_STOP and ``SvcShutdown`` for
  SERVICE_CONTROL_SHUTDOWN; ``GetAcceptedControls`` says which controls the SCM may send.
- ``ReportServiceStatus(state, waitHint=, win32ExitCode=, svcExitCode=)`` calls ``SetServiceStatus``
  (and advances the check point while pending).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import servicemanager  # type: ignore[import-untyped]  # pywin32 (Windows only) has no stubs
import win32service  # type: ignore[import-untyped]  # pywin32 has no stubs
import win32serviceutil  # type: ignore[import-untyped]  # pywin32 has no stubs

from fleetops.agent.winservice.control import (
    SERVICE_NAME,
    AgentServiceControl,
    ServiceableAgent,
    ServiceState,
    win32_exit_codes,
)

#: StartServiceCtrlDispatcher's error when the process was not started by the SCM.
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063


class _FrameworkReporter:
    """``ServiceStatusReporter`` over ``ServiceFramework.ReportServiceStatus``."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def report(self, state: ServiceState, *, wait_hint_ms: int = 0, exit_code: int = 0) -> None:
        win32_code, service_code = win32_exit_codes(exit_code)
        self._service.ReportServiceStatus(
            int(state), waitHint=wait_hint_ms, win32ExitCode=win32_code, svcExitCode=service_code
        )


def service_class(make_agent: Callable[[], ServiceableAgent]) -> type[Any]:
    """The ``ServiceFramework`` subclass that runs ``make_agent()`` as the ``fleetops-agent`` service."""

    class FleetopsAgentService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = "fleetops agent"
        _svc_description_ = "Connects this host to its fleetops controller (outbound mutual TLS; opens no port)."

        def __init__(self, args: list[str]) -> None:
            super().__init__(args)
            self.control = AgentServiceControl(_FrameworkReporter(self), make_agent)

        def GetAcceptedControls(self) -> int:
            return int(win32service.SERVICE_ACCEPT_STOP | win32service.SERVICE_ACCEPT_SHUTDOWN)

        def SvcRun(self) -> None:
            self.control.run()

        def SvcStop(self) -> None:
            self.control.stop()

        def SvcShutdown(self) -> None:
            # Windows is shutting down: the same graceful stop (results journaled, sessions hung up).
            self.control.stop()

    return FleetopsAgentService


def dispatch(make_agent: Callable[[], ServiceableAgent]) -> None:
    """Serve as the service the SCM started; returns once it stopped.

    Raises:
        RuntimeError: this process was not started by the Service Control Manager.
    """
    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(service_class(make_agent))
    try:
        servicemanager.StartServiceCtrlDispatcher()
    except Exception as exc:  # pywintypes.error
        if getattr(exc, "winerror", None) == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            raise RuntimeError("not started by the Service Control Manager") from exc
        raise
