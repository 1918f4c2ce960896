#!/usr/bin/env python3
"""Build the agent's Debian package: ``fleetops-agent_VERSION-REVISION_ARCH.deb`` with dpkg-deb.

    .venv/bin/python scripts/build_agent_deb.py [--out dist] [--arch amd64] [--python 3.11 --python 3.12 ...]

The package is self-contained and offline: it carries the fleetops wheel and wheels of the agent's
dependencies (``deploy/agent-requirements.txt``, downloaded from PyPI or your index here, at build
time, for each target Python and the package's architecture). Its postinst makes the virtualenv
``/opt/fleetops-agent`` with the host's ``python3`` and installs fleetops ``--no-deps`` plus that list
with ``--no-index``: the controller's dependencies never reach a host, and installing needs no network.

Why a virtualenv made at install time, not shipped ready-made: a virtualenv is tied to the absolute
path and the exact interpreter it was made with, so a prebuilt one works only on hosts whose python3
matches the build machine's. Wheels for several Python versions (3.11 Debian 12, 3.12 Ubuntu 24.04,
3.13 Debian 13 by default) let one package serve them all, and ``apt-get install --reinstall
fleetops-agent`` rebuilds the virtualenv after python3 itself moved to a new minor version.

Layout of the package (docs/install.md)::

    /usr/share/fleetops-agent/wheels/           fleetops and the agent's dependency wheels
    /usr/share/fleetops-agent/agent-requirements.txt
    /usr/lib/systemd/system/fleetops-agent.service   deploy/systemd's unit, ExecStart in /opt/fleetops-agent
    /etc/fleetops/agent.env                     conffile: FLEETOPS_AGENT_ARGS
    made by postinst: /opt/fleetops-agent (virtualenv), /var/lib/fleetops-agent (0700 root)

The version is pyproject.toml's (the agent reports ``fleetops.agent.version.AGENT_VERSION``, which
must agree); ``--revision`` is the Debian revision. ``--version X.Y.Z`` builds the fleetops wheel
from a copy of this checkout with both set to X.Y.Z instead (a release to try an update with,
docs/install.md#updating-agents); the checkout itself is not changed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PACKAGE = "fleetops-agent"
VENV = "/opt/fleetops-agent"
SHARE = f"/usr/share/{PACKAGE}"
# /usr/lib, not /lib: systemd reads both, and on merged-/usr systems (Debian 12+, Ubuntu 22.04+)
# they are one directory; /usr is where Debian is moving package files.
UNIT_PATH = "/usr/lib/systemd/system/fleetops-agent.service"
ENV_PATH = "/etc/fleetops/agent.env"
DEFAULT_PYTHONS = ("3.11", "3.12", "3.13")
#: Debian architecture -> the machine in manylinux platform tags.
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
#: Wheels pip may pick: glibc 2.28 and older (Debian 10+, Ubuntu 20.04+). pip does not widen an
#: explicit --platform to older manylinux tags itself, so each is listed.
MANYLINUX = (
    "manylinux_2_28",
    "manylinux_2_17",
    "manylinux2014",
    "manylinux_2_12",
    "manylinux2010",
    "manylinux_2_5",
    "manylinux1",
)
MAINTAINER = "fleetops maintainers <fleetops@localhost>"


def project_version() -> str:
    """pyproject.toml's version, checked against the version the agent reports."""
    version = str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    reported = re.search(r'AGENT_VERSION = "([^"]+)"', (ROOT / "agent" / "version.py").read_text())
    if reported is None or reported.group(1) != version:
        raise SystemExit(f"error: agent/version.py says {reported and reported.group(1)}, pyproject.toml {version}")
    return version


def packaged_unit(text: str) -> str:
    """deploy/systemd/fleetops-agent.service as the package installs it: the agent's own virtualenv."""
    generic = "/opt/fleetops/bin/fleetops-agent "
    if text.count(generic) != 2:  # the header's register example and ExecStart
        raise SystemExit(f"error: expected {generic!r} twice in the agent's unit; update packaged_unit()")
    return text.replace(generic, f"{VENV}/bin/fleetops-agent ")


def control_file(version: str, arch: str, installed_kib: int, pythons: list[str]) -> str:
    lowest = min(pythons, key=lambda v: tuple(int(p) for p in v.split(".")))
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: python3 (>= {lowest}), python3-venv\n"
        "Section: admin\n"
        "Priority: optional\n"
        "Homepage: https://github.com/fleetops/fleetops\n"
        "Description: fleetops host agent (dials out to its controller over mutual TLS)\n"
        " Runs commands, interactive sessions and patch operations for a fleetops controller.\n"
        " The agent opens no listening port. Register the host with\n"
        " /opt/fleetops-agent/bin/fleetops-agent register, then start fleetops-agent.service.\n"
        f" Python wheels for CPython {', '.join(pythons)} are included; postinst installs them\n"
        f" offline into {VENV}.\n"
    )


def run(argv: list[str]) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True)


#: Left out of the copy a ``--version`` build makes of the checkout.
NOT_COPIED = (
    ".git", ".venv", "dist", "build", "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
)  # fmt: skip


def versioned_source(version: str, into: Path) -> Path:
    """A copy of the checkout whose pyproject.toml and agent/version.py say ``version``."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*([a-z0-9.+~]*)", version):
        raise SystemExit(f"error: --version {version!r} is not a version like 0.1.1")
    source = into / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    pyproject = source / "pyproject.toml"
    text, count = re.subn(r'(?m)^version = "[^"]+"', f'version = "{version}"', pyproject.read_text(), count=1)
    if count != 1:
        raise SystemExit("error: no version line in pyproject.toml's [project]")
    pyproject.write_text(text)
    version_py = source / "agent" / "version.py"
    version_py.write_text(re.sub(r'AGENT_VERSION = "[^"]+"', f'AGENT_VERSION = "{version}"', version_py.read_text()))
    return source


def fetch_wheels(wheels: Path, arch: str, pythons: list[str], cache_dir: Path | None, source: Path = ROOT) -> None:
    """The fleetops wheel (from ``source``: this checkout) and the agent's dependency wheels for each Python."""
    cache = ["--cache-dir", str(cache_dir)] if cache_dir else []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", *cache]
    run([*pip, "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(source)])
    for python in pythons:
        abi = "cp" + python.replace(".", "")
        platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{MACHINES[arch]}")]
        run(
            [
                *pip, "download", "--quiet", "--only-binary=:all:", "--dest", str(wheels),
                *platforms, "--implementation", "cp", "--python-version", python,
                "--abi", abi, "--abi", "abi3", "--abi", "none",
                "-r", str(DEPLOY / "agent-requirements.txt"),
            ]
        )  # fmt: skip


def build(
    out: Path, arch: str, pythons: list[str], revision: str, cache_dir: Path | None, agent_version: str = ""
) -> Path:
    """Build the package into ``out`` (as ``agent_version`` when given); returns its path."""
    version = f"{agent_version or project_version()}-{revision}"
    with tempfile.TemporaryDirectory(prefix="fleetops-agent-deb.") as tmp:
        source = versioned_source(agent_version, Path(tmp)) if agent_version else ROOT
        tree = Path(tmp) / "tree"
        share = tree / SHARE.lstrip("/")
        wheels = share / "wheels"
        wheels.mkdir(parents=True)
        fetch_wheels(wheels, arch, pythons, cache_dir, source)
        shutil.copy(DEPLOY / "agent-requirements.txt", share / "agent-requirements.txt")
        (share / "python-versions").write_text(" ".join(pythons) + "\n")

        unit = tree / UNIT_PATH.lstrip("/")
        unit.parent.mkdir(parents=True)
        unit.write_text(packaged_unit((DEPLOY / "systemd" / "fleetops-agent.service").read_text()))
        env = tree / ENV_PATH.lstrip("/")
        env.parent.mkdir(parents=True)
        shutil.copy(DEPLOY / "systemd" / "fleetops-agent.env", env)
        doc = tree / "usr" / "share" / "doc" / PACKAGE
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            "Upstream-Name: fleetops\n\nFiles: *\nLicense: Apache-2.0\n"
            " On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.\n"
            " The wheels in /usr/share/fleetops-agent/wheels carry their own licences.\n"
        )
        for path in tree.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)

        debian = tree / "DEBIAN"
        debian.mkdir()
        installed_kib = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) // 1024 + 1
        (debian / "control").write_text(control_file(version, arch, installed_kib, pythons))
        (debian / "conffiles").write_text(ENV_PATH + "\n")
        for script in ("postinst", "prerm", "postrm"):
            shutil.copy(DEPLOY / "debian" / script, debian / script)
            (debian / script).chmod(0o755)

        out.mkdir(parents=True, exist_ok=True)
        deb = out / f"{PACKAGE}_{version}_{arch}.deb"
        run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)])
    return deb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the .deb goes (default: dist/)")
    parser.add_argument("--arch", choices=sorted(MACHINES), default="amd64", help="Debian architecture")
    parser.add_argument(
        "--python",
        action="append",
        metavar="X.Y",
        help=f"a CPython version to carry wheels for; repeat (default: {' '.join(DEFAULT_PYTHONS)})",
    )
    parser.add_argument("--revision", default="1", help="the Debian revision (default: 1)")
    parser.add_argument("--cache-dir", type=Path, help="pip's download cache (default: pip's own)")
    parser.add_argument(
        "--version",
        default="",
        metavar="X.Y.Z",
        help="build this agent version from a copy of the checkout (default: pyproject.toml's)",
    )
    args = parser.parse_args(argv)
    if shutil.which("dpkg-deb") is None:
        print("error: dpkg-deb not found\nhint: apt-get install dpkg", file=sys.stderr)
        return 2
    pythons = args.python or list(DEFAULT_PYTHONS)
    deb = build(args.out, args.arch, pythons, args.revision, args.cache_dir, args.version)
    print(deb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
