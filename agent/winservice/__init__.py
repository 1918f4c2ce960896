"""The agent as a Windows service: the Service Control Manager's protocol, apart from the Win32 API.

Modules:

``control``   ``AgentServiceControl``: what the service reports and when (start pending, running, stop
              pending, stopped, with an exit code), and how STOP and SHUTDOWN reach the agent
              (``Agent.request_stop``, the same graceful path as SIGTERM on Linux). Pure Python, tested
              on every OS against a fake of the API below.
``pywin32``   the glue to pywin32's ``win32serviceutil.ServiceFramework`` and ``servicemanager`` (imported
              only by ``fleetops-agent service``, on Windows).

``fleetops-agent --state-dir DIR service`` is the service's command line; ``deploy/windows/install.ps1``
registers it (docs/install.md).
"""

from __future__ import annotations

from fleetops.agent.winservice.control import (
    ERROR_SERVICE_SPECIFIC_ERROR,
    SERVICE_NAME,
    AgentServiceControl,
    ServiceableAgent,
    ServiceState,
    ServiceStatusReporter,
    win32_exit_codes,
)

__all__ = [
    "ERROR_SERVICE_SPECIFIC_ERROR",
    "SERVICE_NAME",
    "AgentServiceControl",
    "ServiceState",
    "ServiceStatusReporter",
    "ServiceableAgent",
    "win32_exit_codes",
]
