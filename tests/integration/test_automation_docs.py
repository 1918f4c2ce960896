"""docs/automation.md, run as a reader would: its files written, its opsctl lines run in order.

Each fenced YAML block whose first line is ``# FILE`` is written to FILE; each line of a fenced
``sh`` block runs in bash (with ``opsctl`` on the PATH and the admin profile) against a real
controller and two agents tagged ``role=web`` (web-1, web-2), as the page says. A ``sh`` block
followed by a plain block of ``error:`` lines shows failures: each of its lines must fail with a
usage error (exit 2), and each ``error:`` line shown must be what one of them printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import BASE_ENV, Agent, Controller, start_fleet

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "automation.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


@dataclass(frozen=True)
class Block:
    lang: str
    text: str


def blocks(text: str) -> list[Block]:
    return [Block(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


@dataclass(frozen=True)
class Step:
    kind: str  # "file" | "run" | "fail"
    text: str  # the file's name and content, or a command line
    name: str = ""
    errors: tuple[str, ...] = ()


def steps(page: str) -> list[Step]:
    """The page's files and command lines, in order."""
    found = blocks(page)
    out: list[Step] = []
    for i, block in enumerate(found):
        first = block.text.splitlines()[0] if block.text else ""
        if block.lang == "yaml" and first.startswith("# ") and first.endswith((".yaml", ".yml")):
            out.append(Step("file", block.text, name=first[2:].strip()))
        elif block.lang == "sh":
            following = found[i + 1] if i + 1 < len(found) else None
            errors = ()
            if following is not None and following.lang == "" and following.text.startswith("error:"):
                errors = tuple(line for line in following.text.splitlines() if line.startswith("error:"))
            for line in block.text.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    out.append(Step("fail" if errors else "run", line, errors=errors))
    return out


def test_the_page_has_what_this_test_runs() -> None:
    found = steps(PAGE.read_text())
    assert {s.name for s in found if s.kind == "file"} >= {"restart-service.yaml", "web-restarter.yaml"}
    assert any(s.kind == "fail" for s in found) and any("--doc" in s.text for s in found if s.kind == "run")


@pytest.fixture(scope="module")
def web(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("automation-docs"),
        {"web-1": {"role": "web"}, "web-2": {"role": "web"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def test_every_example_of_the_page_runs(module_controller: Controller, web: dict[str, Agent], tmp_path: Path) -> None:
    env = {
        **BASE_ENV,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{BASE_ENV.get('PATH', '')}",
        "OPSCTL_PROFILE": str(module_controller.profile),
    }
    outputs: dict[str, str] = {}
    for step in steps(PAGE.read_text()):
        if step.kind == "file":
            (tmp_path / step.name).write_text(step.text)
            continue
        result = subprocess.run(
            ["bash", "-c", step.text], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        where = f"docs/automation.md: {step.text}\n{result.stdout}\n{result.stderr}"
        if step.kind == "fail":
            assert result.returncode == 2 and "Traceback" not in result.stderr, where
            outputs[step.text] = result.stderr
            continue
        assert result.returncode in (0, 1) if " doc diff " in step.text else result.returncode == 0, where
        outputs[step.text] = result.stdout
    errors = [s for s in steps(PAGE.read_text()) if s.kind == "fail"]
    printed = "\n".join(outputs[s.text] for s in errors)
    shown = [e for s in errors for e in s.errors]
    assert shown and all(e in printed for e in shown), (shown, printed)

    # What the page says the runs print.
    first_run = "opsctl run --target 'role=web' --doc restart-service --param service=nginx"
    assert "would restart nginx" in outputs[first_run] and "2 hosts (web-1, web-2)" in outputs[first_run]
    assert (
        "would restart nginx (v2)" in outputs["opsctl run --host web-1 --doc restart-service:2 --param service=nginx"]
    )
    assert "version 2 of 2 (default)" in outputs["opsctl doc show restart-service"]
