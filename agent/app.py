"""The agent's composition root: builds the link and the work handlers (commands, sessions) from settings."""

from __future__ import annotations

import asyncio
import logging
import shlex
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from fleetops.agent.commands.detect import current_platform
from fleetops.agent.commands.journal import InvocationJournal
from fleetops.agent.commands.reboot import CommandRebooter, Rebooter, SystemRebooter
from fleetops.agent.commands.service import CommandService
from fleetops.agent.link import ControllerLink
from fleetops.agent.sessions import default_terminal_factory
from fleetops.agent.sessions.runner import SessionManager
from fleetops.agent.ssh import SshServerFactory, host_public_key_line, load_or_create_host_key
from fleetops.agent.state import AgentState
from fleetops.agent.update.trial import RunMarker, note_started, write_marker
from fleetops.agent.version import AGENT_VERSION
from fleetops.common.errors import InvalidInput

log = logging.getLogger(__name__)

JOURNAL_PRUNE_INTERVAL = 24 * 3600.0


@dataclass(frozen=True)
class AgentSettings:
    state_dir: Path
    # Run this instead of rebooting when a command asks for a reboot (exit 194 / 3010); for tests
    # and for hosts whose reboots must go through another tool.
    reboot_command: str = ""


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.state = AgentState(settings.state_dir)
        self.link = ControllerLink(self.state)
        rebooter: Rebooter = (
            CommandRebooter(shlex.split(settings.reboot_command)) if settings.reboot_command else SystemRebooter()
        )
        self.journal = InvocationJournal(settings.state_dir / "journal")
        self.commands = CommandService(
            self.journal,
            current_platform(settings.state_dir / "scripts"),
            rebooter,
            self.link.send,
            state_dir=settings.state_dir,
        )
        self.link.register_handler("run", self.commands.on_run)
        self.link.register_handler("cancel", self.commands.on_cancel)
        self.link.register_handler("result_ack", self.commands.on_result_ack)
        self.link.on_connected(self.commands.on_connected)
        self.link.on_connected(self._note_connected)
        self._run_marker: RunMarker | None = None
        # Interactive sessions: each runs over a stream (and channel) of its own, not over the link.
        self.terminals = default_terminal_factory()
        self.sessions = SessionManager(self.state, self.terminals)
        self.link.register_handler("open_session", self.sessions.on_open)
        # request_stop() may come from another thread (a Windows service's control handler).
        self._stop_lock = threading.Lock()
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _enable_ssh(self) -> None:
        """Serve SSH sessions with the host's SSH host key (made at the first start; docs/ssh.md).

        An agent whose key cannot be read or written still runs everything else: it sends no SSH
        host key, so the controller refuses SSH sessions to it with a message saying why.
        """
        try:
            host_key = load_or_create_host_key(self.settings.state_dir)
        except (OSError, InvalidInput) as exc:
            log.error("SSH sessions are off: cannot load the SSH host key: %s", exc)
            return
        self.link.ssh_host_key = host_public_key_line(host_key)
        terminals = self.terminals
        self.sessions.enable_ssh(lambda setup: SshServerFactory(setup, host_key, terminals))

    def request_stop(self) -> None:
        """Stop gracefully, as SIGTERM does; safe to call from any thread, at any time.

        The Windows service's control handler (``fleetops.agent.winservice``) calls this from the
        Service Control Manager's thread; a call before ``run`` has started makes ``run`` stop as
        soon as it is up (it still recovers the journal and closes cleanly).
        """
        with self._stop_lock:
            self._stop_requested = True
            loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.link.stop)
            except RuntimeError:
                pass  # the loop already closed: run() has returned

    def _install_stop_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """SIGINT and SIGTERM call ``request_stop``.

        asyncio's signal handlers exist on POSIX only; elsewhere (Windows) ``signal.signal`` still
        delivers Ctrl-C/Ctrl-Break in the main thread, and a service stops through
        ``request_stop`` instead.
        """
        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                loop.add_signal_handler(sig, self.link.stop)
            except NotImplementedError:
                if threading.current_thread() is threading.main_thread():
                    signal.signal(sig, lambda _signum, _frame: self.request_stop())

    async def run(self, on_started: Callable[[], None] | None = None) -> None:
        """Run until SIGINT/SIGTERM or ``request_stop()``.

        Args:
            on_started: called once the identity loaded and the journal recovered, right before the
                agent dials the controller (a service manager reports "running" there).

        Raises:
            HostRevoked: the controller explicitly revoked this host (or its certificate expired);
                the caller exits 78 without a restart loop. Every other failure is retried.
            NotFound: this host is not registered.
        """
        self.state.load()  # fail fast with a clear message when not registered
        self._run_marker = await asyncio.to_thread(self._write_marker, note_started)
        self._enable_ssh()
        loop = asyncio.get_running_loop()
        self._install_stop_signals(loop)
        with self._stop_lock:
            self._loop = loop
            stop_early = self._stop_requested
        if stop_early:
            self.link.stop()
        try:
            # Invocations that were running when the agent last stopped end failed (never re-run);
            # results not yet acknowledged go out on the first connect.
            await self.commands.recover()
            if on_started is not None:
                on_started()
            pruner = asyncio.create_task(self._prune_journal())
            try:
                await self.link.run()
            finally:
                pruner.cancel()
                await self.sessions.close()  # hangs up running sessions; their exit frames go out if they can
                await self.commands.close()
        finally:
            with self._stop_lock:
                self._loop = None
        log.info("agent stopped")

    def _write_marker(self, write: Callable[[Path, str], RunMarker]) -> RunMarker | None:
        try:
            return write(self.settings.state_dir, AGENT_VERSION)
        except OSError as exc:
            log.warning("cannot write the run marker (an update in progress cannot see this agent): %s", exc)
            return None

    async def _note_connected(self) -> None:
        """Say in the run marker that this version connected: an update on trial waits for it (agent/update)."""
        started = self._run_marker
        if started is None:
            return

        def connected(state_dir: Path, version: str) -> RunMarker:
            marker = replace(started, connected_at=time.time())
            write_marker(state_dir, marker)
            return marker

        await asyncio.to_thread(self._write_marker, connected)

    async def _prune_journal(self) -> None:
        """Daily: drop tombstones of invocations acknowledged more than a week ago."""
        while True:
            try:
                removed = await asyncio.to_thread(self.journal.prune)
                if removed:
                    log.info("pruned %d old invocation tombstones from the journal", removed)
            except OSError as exc:
                log.warning("pruning the invocation journal failed: %s", exc)
            await asyncio.sleep(JOURNAL_PRUNE_INTERVAL)
