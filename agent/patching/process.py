"""The real ``CommandRunner``: runs package-manager programs as child processes, no shell involved."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence

from fleetops.agent.patching.interfaces import CommandResult
from fleetops.common.errors import Unavailable

#: Environment every package-manager call gets: untranslated output, so parsers see one language.
C_LOCALE: Mapping[str, str] = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": ""}


class SubprocessRunner:
    """Runs programs with stdin closed and both output streams captured (decoded as UTF-8)."""

    async def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Raises:
        Unavailable: the program is missing or cannot start, or it ran past ``timeout`` and was killed.
        """
        if not argv:
            raise Unavailable("no program to run", "this is a bug in the patch provider")
        merged = dict(os.environ)
        merged.update(env or {})
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=merged,
            )
        except FileNotFoundError:
            raise Unavailable(f"{argv[0]} is not installed on this host", f"install {argv[0]} or fix PATH") from None
        except OSError as exc:
            raise Unavailable(f"cannot start {argv[0]}: {exc}", "check the agent's permissions") from None
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise Unavailable(
                f"{' '.join(argv[:3])} did not finish within {timeout:g} s and was stopped",
                "the package manager may be waiting on a lock or a slow mirror; retry later or raise the timeout",
            ) from None
        assert process.returncode is not None
        return CommandResult(
            process.returncode, stdout.decode("utf-8", errors="replace"), stderr.decode("utf-8", errors="replace")
        )
