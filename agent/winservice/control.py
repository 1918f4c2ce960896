"""What the agent's Windows service tells the Service Control Manager, and when.

The SCM's contract (``SetServiceStatus``): a service reports ``SERVICE_START_PENDING`` until it
is up, then ``SERVICE_RUNNING``; on a STOP or SHUTDOWN control it reports ``SERVICE_STOP_PENDING``
(with a wait hint the SCM waits for) and finally ``SERVICE_STOPPED`` with an exit code. A status
never goes back: once stopping, the service must not report running, even when the stop arrived
while it was still starting.

``AgentServiceControl`` keeps that order under a lock, because the two sides run on different
threads: ``run`` on the service's main thread (pywin32's ``SvcRun``), ``stop`` on the control
handler's thread (``SvcStop``/``SvcShutdown``). The agent stops through ``Agent.request_stop``,
the path SIGTERM takes on Linux, so journal, sessions and results end the same way.

Exit codes: a clean stop reports 0. So does a revoked host (``HostRevoked``, exit 78 on
Linux): like the systemd unit's ``RestartPreventExitStatus=78``, the service must not be restarted
by its recovery actions only to be refused again, and the SCM restarts a service that stops with
an error. Everything else (not registered, a damaged state directory, a crash) reports
``ERROR_SERVICE_SPECIFIC_ERROR`` with the agent's exit code, which the SCM's failure actions
(``sc.exe failure``/``failureflag``, set by ``deploy/windows/install.ps1``) act on.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from fleetops.agent.link import HostRevoked
from fleetops.common.errors import FleetopsError

log = logging.getLogger(__name__)

#: The service's name (``sc.exe query fleetops-agent``); the installer registers it under this name.
SERVICE_NAME = "fleetops-agent"
#: Win32 ``ERROR_SERVICE_SPECIFIC_ERROR``: the service's own exit code is in ``dwServiceSpecificExitCode``.
ERROR_SERVICE_SPECIFIC_ERROR = 1066
#: How long the SCM should wait for "running" (loading the identity, recovering the journal).
START_WAIT_HINT_MS = 30_000
#: How long the SCM should wait for "stopped": the systemd unit's TimeoutStopSec=30 as well.
STOP_WAIT_HINT_MS = 30_000


class ServiceState(enum.IntEnum):
    """``SERVICE_STATUS.dwCurrentState`` values (winsvc.h), the ones this service reports."""

    STOPPED = 1
    START_PENDING = 2
    STOP_PENDING = 3
    RUNNING = 4


class ServiceStatusReporter(Protocol):
    """Where statuses go: ``SetServiceStatus`` through pywin32, or a test's list."""

    def report(self, state: ServiceState, *, wait_hint_ms: int = 0, exit_code: int = 0) -> None:
        """Report ``state``; ``exit_code`` (0: success) is meaningful with ``STOPPED`` only."""
        ...


class ServiceableAgent(Protocol):
    """What the service needs of ``fleetops.agent.app.Agent``."""

    async def run(self, on_started: Callable[[], None] | None = None) -> None: ...

    def request_stop(self) -> None: ...


def win32_exit_codes(exit_code: int) -> tuple[int, int]:
    """``(dwWin32ExitCode, dwServiceSpecificExitCode)`` for the agent's ``exit_code`` (0: success)."""
    if exit_code == 0:
        return 0, 0
    return ERROR_SERVICE_SPECIFIC_ERROR, exit_code


class AgentServiceControl:
    """The agent's service lifecycle, with the Win32 API behind ``ServiceStatusReporter``.

    Args:
        reporter: receives each status, in order, exactly once per change.
        make_agent: builds the agent (on the service's main thread, after "start pending").
    """

    def __init__(self, reporter: ServiceStatusReporter, make_agent: Callable[[], ServiceableAgent]) -> None:
        self._reporter = reporter
        self._make_agent = make_agent
        self._lock = threading.Lock()
        self._agent: ServiceableAgent | None = None
        self._stopping = False
        self._stopped = False

    def run(self) -> int:
        """Start the agent and serve until it stops; reports every status. Returns the exit code reported.

        Called on the service's main thread (pywin32's ``SvcRun``); never raises.
        """
        with self._lock:
            if not self._stopping:
                self._reporter.report(ServiceState.START_PENDING, wait_hint_ms=START_WAIT_HINT_MS)
        exit_code = 0
        try:
            agent = self._make_agent()
            with self._lock:
                self._agent = agent
                stop_now = self._stopping
            if stop_now:
                agent.request_stop()  # a stop that came while starting: run() recovers, then stops
            asyncio.run(agent.run(on_started=self._started))
        except HostRevoked as exc:
            # Not restarted by the recovery actions (see the module docstring): stopping cleanly.
            log.error("%s; the service stops and stays stopped. hint: %s", exc.message, exc.hint)
        except FleetopsError as exc:
            log.error("the agent cannot run: %s%s", exc.message, f" (hint: {exc.hint})" if exc.hint else "")
            exit_code = exc.exit_code
        except Exception:
            log.exception("the agent failed")
            exit_code = 1
        with self._lock:
            self._stopped = True
            self._reporter.report(ServiceState.STOPPED, exit_code=exit_code)
        return exit_code

    def stop(self) -> None:
        """Handle SERVICE_CONTROL_STOP or SERVICE_CONTROL_SHUTDOWN (on the control handler's thread).

        Reports "stop pending" once and asks the agent to stop gracefully; returns at once (a
        control handler must not block). A second stop, or one after the service stopped, does nothing.
        """
        with self._lock:
            if self._stopping or self._stopped:
                return
            self._stopping = True
            self._reporter.report(ServiceState.STOP_PENDING, wait_hint_ms=STOP_WAIT_HINT_MS)
            agent = self._agent
        if agent is not None:
            agent.request_stop()

    def _started(self) -> None:
        with self._lock:
            if not self._stopping:
                self._reporter.report(ServiceState.RUNNING)
