"""A real local apt repository for patch tests: .deb packages built with dpkg-deb, served from ``file:``.

Nothing here needs more than dpkg and apt (both on every Debian and Ubuntu system): the ``Packages``
and ``Release`` indexes are written in Python, so dpkg-dev and apt-utils are not required.

The repository has two suites, the way Debian and Ubuntu publish updates (one pocket for security
fixes, one for everything else), so the agent's apt provider classifies them as it would on a real
host. ``apt-get --simulate upgrade`` describes each candidate as ``Label:Version/Suite`` and
``fleetops.agent.patching.apt.classify_origins`` reads that::

    Inst fleetops-test-security [1.0] (2.0 fleetops-test-security:1/fleetops-test-security [all])  -> security
    Inst fleetops-test-bugfix [1.0] (2.0 fleetops-test-updates:1/fleetops-test-updates [all])      -> bugfix

Test setup changes the host (it installs packages and an apt source), so it only runs as root on a
system with dpkg and apt, which CI is; elsewhere it skips (or fails with ``FLEETOPS_REQUIRE_APT=1``).
Wire it up with :func:`apt_fixture`::

    @pytest.fixture
    def apt_setup(tmp_path_factory):
        yield from apt_repo.apt_fixture(tmp_path_factory)

Only this repository's indexes are ever refreshed (:meth:`LocalAptRepository.update`): the host's
other apt lists are neither fetched nor deleted, and nothing touches the network. Teardown purges
the test packages, removes the source file and the lists apt kept for it, and leaves the host as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

ORIGIN = "fleetops-test"
#: The regular pocket. "-updates" makes the agent classify what is published here as ``bugfix``.
REGULAR_SUITE = "fleetops-test-updates"
#: The security pocket: the agent classifies what is published here as ``security``.
SECURITY_SUITE = "fleetops-test-security"
COMPONENT = "main"
#: The Release file's Version field, shown by apt between the label and the suite.
RELEASE_VERSION = "1"
SOURCES_DIR = Path("/etc/apt/sources.list.d")
LISTS_DIR = Path("/var/lib/apt/lists")
APT_HINT = (
    "apt repository tests skipped: they install packages and an apt source, so run them as root on "
    "Debian or Ubuntu (dpkg, dpkg-deb, dpkg-query and apt-get on PATH), which CI does; "
    "set FLEETOPS_REQUIRE_APT=1 to fail instead of skipping."
)
#: apt and dpkg without prompts, untranslated output.
APT_ENV = {"LC_ALL": "C", "LANG": "C", "DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}

_TOOLS = ("dpkg", "dpkg-deb", "dpkg-query", "apt-get")


def _run(argv: list[str], *, check: bool = True, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, **APT_ENV}, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result


def apt_unavailable_reason() -> str | None:
    """Why real apt tests cannot run here, or None when they can (root, dpkg and apt present)."""
    if os.name != "posix" or os.geteuid() != 0:
        return "not running as root"
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    if not Path("/var/lib/dpkg/status").exists() or not SOURCES_DIR.is_dir():
        return "no dpkg database or /etc/apt/sources.list.d"
    return None


def require_apt() -> None:
    """Skip the calling test (fail with FLEETOPS_REQUIRE_APT=1) unless real apt tests can run here."""
    reason = apt_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("FLEETOPS_REQUIRE_APT") == "1":
        pytest.fail(f"FLEETOPS_REQUIRE_APT=1 but {reason}. {APT_HINT}")
    pytest.skip(f"{reason}. {APT_HINT}")


def native_architecture() -> str:
    return _run(["dpkg", "--print-architecture"]).stdout.strip()


# --------------------------------------------------------------------------------------------------
# Packages


def build_package(
    directory: Path,
    name: str,
    version: str,
    *,
    description: str,
    depends: str | None = None,
) -> Path:
    """Build ``directory/name_version_all.deb``: Architecture all, one payload file.

    The payload is ``/usr/share/<name>/VERSION`` holding ``version`` (and a newline), so a test can
    read what is really installed as well as ask dpkg.
    """
    directory = Path(directory)
    tree = directory / f"{name}_{version}.tree"
    if tree.exists():
        shutil.rmtree(tree)
    (tree / "DEBIAN").mkdir(parents=True)
    payload = tree / "usr" / "share" / name
    payload.mkdir(parents=True)
    (payload / "VERSION").write_text(version + "\n", encoding="utf-8")
    control = [
        f"Package: {name}",
        f"Version: {version}",
        "Architecture: all",
        "Maintainer: fleetops tests <fleetops-tests@example.invalid>",
        "Section: misc",
        "Priority: optional",
        "Installed-Size: 1",
    ]
    if depends:
        control.append(f"Depends: {depends}")
    control.append(f"Description: {description}")
    control.append(" A throwaway package built by the fleetops test suite; safe to purge.")
    (tree / "DEBIAN" / "control").write_text("\n".join(control) + "\n", encoding="utf-8")
    for path in [tree, *tree.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    deb = directory / f"{name}_{version}_all.deb"
    _run(["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", str(tree), str(deb)])
    shutil.rmtree(tree)
    return deb


def installed_version(name: str) -> str | None:
    """The version of ``name`` dpkg has installed, or None (not installed, or only config files left)."""
    result = _run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Version}", name], check=False)
    if result.returncode != 0:
        return None
    status, _, version = result.stdout.partition("\t")
    return version if status[1:2] == "i" and version else None


def is_known_to_dpkg(name: str) -> bool:
    """Whether dpkg has any record of ``name`` (installed, config files left, half-installed...)."""
    result = _run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", name], check=False)
    return result.returncode == 0 and result.stdout.strip() not in ("", "un")


def install_deb(path: Path) -> None:
    """``dpkg -i path`` (for setting up what is "installed" before a test)."""
    _run(["dpkg", "-i", str(path)])


def purge(*names: str) -> None:
    """``dpkg --purge`` every name dpkg knows about; unknown names are ignored."""
    known = [name for name in names if is_known_to_dpkg(name)]
    if known:
        _run(["dpkg", "--purge", *known])


# --------------------------------------------------------------------------------------------------
# The repository


def _apt_uri_to_filename(uri: str) -> str:
    """apt's URItoFileName: how it names the list files it keeps for ``uri`` in /var/lib/apt/lists.

    For a ``file:`` URI that is the path with unsafe characters %-quoted and "/" turned into "_".
    """
    path = uri.removeprefix("file:")
    quoted = "".join(
        f"%{b:02x}" if b <= 0x20 or b >= 0x7F or chr(b) in _APT_QUOTED else chr(b) for b in path.encode("utf-8")
    )
    return quoted.replace("/", "_")


_APT_QUOTED = set('\\|{}[]<>"^~_=!@#$%^*')


@dataclass
class _Entry:
    deb: Path
    fields: str  # the control stanza, as dpkg-deb --field prints it


class LocalAptRepository:
    """A ``dists``/``pool`` apt repository at ``root`` with a regular and a security suite.

    Each suite has one component (``main``) for the native architecture. Suite, Codename and Label
    are the suite's name; Origin is :data:`ORIGIN` for both, like Debian's two archives.

    Usage: :meth:`add` .debs to suites, :meth:`publish`, :meth:`install_sources`, :meth:`update`;
    at the end :meth:`remove_sources`.

    The root must be readable by apt's unprivileged download user (``_apt``): apt fetches ``file:``
    sources as that user, and symlinks the indexes into ``lists/partial``, so a repository under a
    0700 directory such as pytest's ``tmp_path`` fails ``apt-get update`` with "Permission denied".
    :func:`new_repository_root` makes a suitable directory; :meth:`install_sources` checks this.
    """

    def __init__(
        self,
        root: Path,
        *,
        suites: tuple[str, ...] = (REGULAR_SUITE, SECURITY_SUITE),
        origin: str = ORIGIN,
        architecture: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.suites = suites
        self.origin = origin
        self.architecture = architecture or native_architecture()
        self.sources_path: Path | None = None
        self._entries: dict[str, list[_Entry]] = {suite: [] for suite in suites}
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return f"file:{self.root}"

    def origin_string(self, suite: str) -> str:
        """How apt describes a candidate from ``suite`` in ``apt-get --simulate`` output."""
        return f"{suite}:{RELEASE_VERSION}/{suite}"

    def add(self, deb: Path, suite: str) -> Path:
        """Copy ``deb`` into ``pool/<suite>/`` and list it in ``suite`` at the next :meth:`publish`."""
        if suite not in self._entries:
            raise ValueError(f"unknown suite {suite!r}; this repository has {', '.join(self.suites)}")
        pool = self.root / "pool" / suite / COMPONENT
        pool.mkdir(parents=True, exist_ok=True)
        target = pool / Path(deb).name
        shutil.copyfile(deb, target)
        stanza = _run(["dpkg-deb", "--field", str(target)]).stdout.strip("\n")
        self._entries[suite].append(_Entry(target, stanza))
        return target

    def publish(self) -> None:
        """Write every suite's ``Packages``, ``Packages.gz`` and ``Release`` (all world-readable)."""
        for suite in self.suites:
            self._publish_suite(suite)
        for path in [self.root, *self.root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    def check_readable_by_apt(self) -> None:
        """Raises RuntimeError if a directory above the root is not searchable by others (see the class doc)."""
        for parent in self.root.parents:
            if parent.stat().st_mode & 0o001 == 0:
                raise RuntimeError(
                    f"{parent} is not searchable by others, so apt's _apt user cannot read the repository at "
                    f"{self.root}; put it somewhere else (new_repository_root() makes a suitable directory)"
                )

    def _publish_suite(self, suite: str) -> None:
        dist = self.root / "dists" / suite
        binary = dist / COMPONENT / f"binary-{self.architecture}"
        binary.mkdir(parents=True, exist_ok=True)
        stanzas = []
        for entry in self._entries[suite]:
            data = entry.deb.read_bytes()
            stanzas.append(
                entry.fields
                + f"\nFilename: {entry.deb.relative_to(self.root).as_posix()}"
                + f"\nSize: {len(data)}"
                + f"\nMD5sum: {hashlib.md5(data).hexdigest()}"
                + f"\nSHA1: {hashlib.sha1(data).hexdigest()}"
                + f"\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
            )
        packages = "\n".join(stanzas).encode("utf-8")
        (binary / "Packages").write_bytes(packages)
        (binary / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
        # A component Release file, as Debian ships (apt does not need it, it is listed for completeness).
        component_release = (
            f"Archive: {suite}\nOrigin: {self.origin}\nLabel: {suite}\nComponent: {COMPONENT}\n"
            f"Architecture: {self.architecture}\n"
        ).encode()
        (binary / "Release").write_bytes(component_release)

        indexes = sorted(p for p in binary.iterdir() if p.is_file())
        lines = [
            f"Origin: {self.origin}",
            f"Label: {suite}",
            f"Suite: {suite}",
            f"Codename: {suite}",
            f"Version: {RELEASE_VERSION}",
            f"Date: {format_datetime(datetime.now(UTC).replace(microsecond=0), usegmt=True)}",
            f"Architectures: {self.architecture}",
            f"Components: {COMPONENT}",
            f"Description: fleetops test repository, {suite}",
        ]
        for field_name, algorithm in (("MD5Sum", hashlib.md5), ("SHA1", hashlib.sha1), ("SHA256", hashlib.sha256)):
            lines.append(f"{field_name}:")
            for index in indexes:
                data = index.read_bytes()
                lines.append(f" {algorithm(data).hexdigest()} {len(data):>8} {index.relative_to(dist).as_posix()}")
        (dist / "Release").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def sources_line(self, suite: str | None = None) -> str:
        """One-line-style apt source(s): every suite, or just ``suite``."""
        suites = [suite] if suite else list(self.suites)
        return "\n".join(f"deb [trusted=yes arch={self.architecture}] {self.uri} {s} {COMPONENT}" for s in suites)

    def install_sources(self, name: str = "fleetops-test") -> Path:
        """Write ``/etc/apt/sources.list.d/<name>.list`` listing every suite; returns its path."""
        self.check_readable_by_apt()
        path = SOURCES_DIR / f"{name}.list"
        path.write_text(f"# fleetops test repository; removed by the tests\n{self.sources_line()}\n", encoding="utf-8")
        self.sources_path = path
        return path

    def update_argv(self) -> list[str]:
        """``apt-get update`` of only this repository: other lists are neither fetched nor deleted."""
        if self.sources_path is None:
            raise RuntimeError("install_sources() first")
        return [
            "apt-get",
            "update",
            "-q",
            "-o",
            f"Dir::Etc::sourcelist={self.sources_path}",
            "-o",
            "Dir::Etc::sourceparts=-",
            "-o",
            "APT::Get::List-Cleanup=0",
        ]

    def update(self) -> subprocess.CompletedProcess[str]:
        """Refresh this repository's lists only (see :meth:`update_argv`); raises if apt reports an error."""
        result = _run(self.update_argv())
        problems = [line for line in result.stderr.splitlines() if line.startswith(("E:", "W:"))]
        if problems:
            raise RuntimeError("apt-get update of the test repository complained:\n" + "\n".join(problems))
        return result

    def list_files(self) -> list[Path]:
        """The files (and symlinks) apt keeps in /var/lib/apt/lists and lists/partial for this repository."""
        prefix = _apt_uri_to_filename(f"{self.uri}/dists/")
        candidates = [*LISTS_DIR.glob("*"), *(LISTS_DIR / "partial").glob("*")]
        return sorted(p for p in candidates if p.name.startswith(prefix) and (p.is_symlink() or p.is_file()))

    def remove_sources(self) -> None:
        """Remove the source file and the lists apt kept for this repository (nothing is re-fetched)."""
        if self.sources_path is not None:
            self.sources_path.unlink(missing_ok=True)
            self.sources_path = None
        for path in self.list_files():
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# The standard test setup


@dataclass(frozen=True)
class ExpectedUpdate:
    """A test package: ``installed`` is on the host, ``candidate`` is published in ``suite``."""

    name: str
    installed: str
    candidate: str
    suite: str
    classification: str  # what the agent's apt provider should call it
    repository: str  # the origin apt shows for the candidate: "Label:Version/Suite"

    @property
    def payload(self) -> Path:
        """The installed file holding the installed version."""
        return Path("/usr/share") / self.name / "VERSION"


SECURITY_PACKAGE = "fleetops-test-security"
BUGFIX_PACKAGE = "fleetops-test-bugfix"
REJECTED_PACKAGE = "fleetops-test-rejected"


@dataclass
class AptTestSetup:
    """What :func:`apt_setup` built: the repository and the three pending updates."""

    repo: LocalAptRepository
    security: ExpectedUpdate  # v2 in the security suite
    bugfix: ExpectedUpdate  # v2 in the regular suite
    rejected: ExpectedUpdate  # v2 in the security suite; a test's baseline rejects it
    debs: dict[tuple[str, str], Path] = field(default_factory=dict)  # (name, version) -> .deb

    @property
    def updates(self) -> tuple[ExpectedUpdate, ...]:
        return (self.security, self.bugfix, self.rejected)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(u.name for u in self.updates)

    def by_name(self, name: str) -> ExpectedUpdate:
        for update in self.updates:
            if update.name == name:
                return update
        raise KeyError(name)


def new_repository_root(prefix: str = "fleetops-apt-repo.") -> Path:
    """A fresh 0755 directory in the system temp dir that apt's _apt user can read; the caller removes it."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def _cleanup(repo: LocalAptRepository | None, names: tuple[str, ...]) -> None:
    errors = []
    try:
        purge(*names)
    except Exception as exc:  # still remove the source
        errors.append(exc)
    if repo is not None:
        repo.remove_sources()
        shutil.rmtree(repo.root, ignore_errors=True)
    if errors:
        raise errors[0]


def apt_setup(directory: Path, *, sources_name: str = "fleetops-test") -> Iterator[AptTestSetup]:
    """Build, install and publish the test packages; undo it all when the generator is closed.

    Each package is built in ``directory`` and installed at 1.0 with ``dpkg -i``; 2.0 is published
    in a repository in a fresh :func:`new_repository_root`, whose source file is installed and whose
    lists alone are refreshed. Teardown purges the packages and removes the source file, the
    repository's apt lists and the repository. Call :func:`require_apt` first.
    """
    directory = Path(directory)
    names = (SECURITY_PACKAGE, BUGFIX_PACKAGE, REJECTED_PACKAGE)
    purge(*names)  # left over from an interrupted run
    root = new_repository_root()
    repo: LocalAptRepository | None = None
    try:
        repo = built = LocalAptRepository(root)

        def expected(name: str, suite: str, classification: str) -> ExpectedUpdate:
            return ExpectedUpdate(name, "1.0", "2.0", suite, classification, built.origin_string(suite))

        setup = AptTestSetup(
            repo=repo,
            security=expected(SECURITY_PACKAGE, SECURITY_SUITE, "security"),
            bugfix=expected(BUGFIX_PACKAGE, REGULAR_SUITE, "bugfix"),
            rejected=expected(REJECTED_PACKAGE, SECURITY_SUITE, "security"),
        )
        debs_dir = directory / "debs"
        debs_dir.mkdir(parents=True, exist_ok=True)
        for update in setup.updates:
            for version in (update.installed, update.candidate):
                setup.debs[(update.name, version)] = build_package(
                    debs_dir, update.name, version, description=f"fleetops test package ({update.classification})"
                )
            install_deb(setup.debs[(update.name, update.installed)])
            repo.add(setup.debs[(update.name, update.candidate)], update.suite)
        repo.publish()
        repo.install_sources(sources_name)
        repo.update()
        yield setup
    finally:
        _cleanup(repo, names)
        shutil.rmtree(root, ignore_errors=True)


def apt_fixture(
    tmp_path_factory: pytest.TempPathFactory, *, sources_name: str = "fleetops-test"
) -> Iterator[AptTestSetup]:
    """Body of a pytest fixture: skip unless root with apt, then :func:`apt_setup` in a fresh temp dir."""
    require_apt()
    yield from apt_setup(tmp_path_factory.mktemp("apt"), sources_name=sources_name)
