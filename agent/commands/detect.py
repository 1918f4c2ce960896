"""Which ``CommandPlatform`` this agent uses: the one factory, apart from the base module.

``platform.py`` holds the interface and its shared helpers; ``posix.py`` and ``windows.py``
implement it. The factory lives here so that neither implementation module is imported by the
base it builds on (no import cycle), and each is imported only on the OS that uses it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fleetops.agent.commands.platform import CommandPlatform


def current_platform(script_dir: Path | None = None, os_name: str = os.name) -> CommandPlatform:
    """The implementation for the OS the agent runs on.

    Args:
        script_dir: where script files are written before they run (a private directory);
            None uses the platform's default.
        os_name: ``os.name`` of the host (a parameter so both branches are tested on any OS).
    """
    if os_name == "nt":
        from fleetops.agent.commands.windows import WindowsPlatform

        return WindowsPlatform(script_dir=script_dir)
    from fleetops.agent.commands.posix import PosixPlatform

    return PosixPlatform(script_dir=script_dir)
