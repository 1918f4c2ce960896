#!/usr/bin/env python3
"""Vendor the web console's third-party browser code from npm releases.

Usage:
    python scripts/update_console_assets.py                       # re-fetch every package in the manifest
    python scripts/update_console_assets.py --upgrade NAME@VERSION  # move one package to another release
    python scripts/update_console_assets.py --check               # offline: the vendored files match

The console (controller/console/) is served under a CSP that only allows scripts and styles from its
own origin, so the libraries it uses are shipped inside the Python package: released builds taken
from npm tarballs, no Node build step. controller/console/static/vendor/MANIFEST.json lists, per
npm package, its version, the tarball's ``integrity`` (the registry's sha512 SRI string), the files
taken from the tarball (``source``: a path inside it, under ``package/``) with where each goes
(``dest``: a path under ``vendor/<dir>/``) and its sha256, and which of those is the licence.

Default mode: for each package, ask the npm registry for the tarball of that exact version, refuse
it unless its sha512 equals the manifest's integrity, extract only the listed files and record
their sha256 in the manifest. Files in a package's directory that the manifest does not list are
removed. ``--upgrade NAME@VERSION`` first takes that release's version and integrity from the
registry (the package must already have an entry; add one by hand for a new package), then
updates that package alone. ``--check`` needs no network: every listed file exists with its
recorded sha256, the licence file is there and not empty, and nothing unlisted lies beside them
(tests/unit/test_console_assets.py runs it). Exit code 1 on any problem, with a message naming the
file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "controller" / "console" / "static" / "vendor"
MANIFEST_NAME = "MANIFEST.json"
REGISTRY = "https://registry.npmjs.org"
TIMEOUT = 60.0
UPDATE_COMMAND = "python scripts/update_console_assets.py"


class AssetError(Exception):
    """A problem the user has to act on; the message says what to do."""


@dataclass
class VendoredFile:
    source: str
    dest: str
    sha256: str


@dataclass
class Package:
    name: str
    version: str
    integrity: str
    dir: str
    license: str
    license_file: str
    files: list[VendoredFile]


# --- manifest -----------------------------------------------------------------------------------


def _safe_relative(path: str, what: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise AssetError(f"{MANIFEST_NAME}: {what} {path!r} must be a relative path without '..'")
    return pure


def _package_from_json(entry: dict[str, Any]) -> Package:
    try:
        files = [VendoredFile(f["source"], f["dest"], f.get("sha256", "")) for f in entry["files"]]
        package = Package(
            name=entry["name"],
            version=entry["version"],
            integrity=entry.get("integrity", ""),
            dir=entry["dir"],
            license=entry.get("license", ""),
            license_file=entry["license_file"],
            files=files,
        )
    except (KeyError, TypeError) as exc:
        raise AssetError(
            f"{MANIFEST_NAME}: package entry {entry!r} lacks {exc}; each needs name, version, integrity, dir, "
            "license_file and files (a list of {source, dest})"
        ) from exc
    _safe_relative(package.dir, "dir")
    for item in package.files:
        if not item.source.startswith("package/"):
            raise AssetError(f"{MANIFEST_NAME}: {package.name}: source {item.source!r} must start with 'package/'")
        _safe_relative(item.source, "source")
        _safe_relative(item.dest, "dest")
    if package.license_file not in {item.dest for item in package.files}:
        raise AssetError(
            f"{MANIFEST_NAME}: {package.name}: license_file {package.license_file!r} is not one of its files' dest; "
            "list the tarball's licence under files"
        )
    return package


def load_manifest(vendor_dir: Path = VENDOR_DIR) -> list[Package]:
    path = vendor_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AssetError(f"{path}: missing; restore it from git (it lists what is vendored)") from exc
    except json.JSONDecodeError as exc:
        raise AssetError(f"{path}: not valid JSON ({exc}); fix it or restore it from git") from exc
    return [_package_from_json(entry) for entry in data.get("packages", [])]


def save_manifest(packages: list[Package], vendor_dir: Path = VENDOR_DIR) -> None:
    data = {
        "comment": f"Written by {UPDATE_COMMAND}; edit name/version/dir/files by hand, the rest is filled in.",
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "integrity": p.integrity,
                "dir": p.dir,
                "license": p.license,
                "license_file": p.license_file,
                "files": [{"source": f.source, "dest": f.dest, "sha256": f.sha256} for f in p.files],
            }
            for p in packages
        ],
    }
    (vendor_dir / MANIFEST_NAME).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# --- check (offline) ----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_package(package: Package, vendor_dir: Path) -> list[str]:
    problems: list[str] = []
    package_dir = vendor_dir / package.dir
    listed = set()
    for item in package.files:
        path = package_dir / item.dest
        listed.add(path)
        shown = path.relative_to(vendor_dir)
        if not path.is_file():
            problems.append(f"{shown}: missing ({package.name}@{package.version}); run {UPDATE_COMMAND}")
        elif not item.sha256:
            problems.append(f"{shown}: no sha256 in {MANIFEST_NAME}; run {UPDATE_COMMAND}")
        elif _sha256(path) != item.sha256:
            problems.append(
                f"{shown}: sha256 differs from {MANIFEST_NAME} (changed by hand?); run {UPDATE_COMMAND} "
                "to restore the released file"
            )
    license_path = package_dir / package.license_file
    if license_path.is_file() and license_path.stat().st_size == 0:
        problems.append(f"{license_path.relative_to(vendor_dir)}: licence file of {package.name} is empty")
    if package_dir.is_dir():
        for path in sorted(p for p in package_dir.rglob("*") if p.is_file()):
            if path not in listed:
                problems.append(
                    f"{path.relative_to(vendor_dir)}: not listed in {MANIFEST_NAME}; remove it or list it there"
                )
    return problems


def check(vendor_dir: Path = VENDOR_DIR) -> list[str]:
    """The problems with the vendored files in ``vendor_dir`` (empty when all is well)."""
    try:
        packages = load_manifest(vendor_dir)
    except AssetError as exc:
        return [str(exc)]
    if not packages:
        return [f"{vendor_dir / MANIFEST_NAME}: lists no packages"]
    problems: list[str] = []
    for package in packages:
        problems.extend(_check_package(package, vendor_dir))
    return problems


# --- registry -----------------------------------------------------------------------------------


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise AssetError(f"{url}: HTTP {exc.code}; check the package name and version") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise AssetError(f"{url}: {exc}; is the npm registry reachable (proxy settings)?") from exc


def registry_dist(name: str, version: str, registry: str = REGISTRY) -> tuple[str, str]:
    """(tarball URL, integrity) of one release, from the registry's version document."""
    url = f"{registry.rstrip('/')}/{urllib.parse.quote(name, safe='@')}/{urllib.parse.quote(version)}"
    try:
        dist = json.loads(_get(url))["dist"]
        return str(dist["tarball"]), str(dist["integrity"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AssetError(f"{url}: no dist.tarball/dist.integrity in the registry's answer") from exc


def verify_integrity(data: bytes, integrity: str, what: str) -> None:
    """Refuse ``data`` unless its sha512 is one of the SRI string's sha512 hashes."""
    expected = [part.split("-", 1)[1] for part in integrity.split() if part.startswith("sha512-")]
    if not expected:
        raise AssetError(f"{what}: integrity {integrity!r} has no sha512 hash; run --upgrade NAME@VERSION")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    if actual not in expected:
        raise AssetError(
            f"{what}: tarball sha512-{actual} does not match the manifest's integrity {integrity}; refusing it. "
            "If the release was really republished, check why before running --upgrade."
        )


def fetch_tarball(package: Package, registry: str = REGISTRY) -> bytes:
    what = f"{package.name}@{package.version}"
    if not package.integrity:
        raise AssetError(f"{what}: no integrity in {MANIFEST_NAME}; run --upgrade {what}")
    tarball_url, registry_integrity = registry_dist(package.name, package.version, registry)
    if registry_integrity != package.integrity:
        raise AssetError(
            f"{what}: the registry's integrity {registry_integrity} differs from the manifest's "
            f"{package.integrity}; refusing it"
        )
    if not tarball_url.startswith("https://"):
        raise AssetError(f"{what}: tarball URL {tarball_url} is not https; refusing it")
    data = _get(tarball_url)
    verify_integrity(data, package.integrity, what)
    return data


# --- update -------------------------------------------------------------------------------------


def extract(package: Package, tarball: bytes) -> dict[str, bytes]:
    """The listed files' contents, by dest; only regular files, exactly the listed paths."""
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        members = {member.name: member for member in archive.getmembers()}
        for item in package.files:
            member = members.get(item.source)
            if member is None:
                raise AssetError(
                    f"{package.name}@{package.version}: the tarball has no {item.source}; list its files with "
                    f"`npm pack {package.name}@{package.version} --dry-run` and fix {MANIFEST_NAME}"
                )
            if not member.isfile():
                raise AssetError(f"{package.name}@{package.version}: {item.source} is not a regular file")
            stream = archive.extractfile(member)
            assert stream is not None  # a regular file always has one
            contents[item.dest] = stream.read()
    return contents


def install(package: Package, contents: dict[str, bytes], vendor_dir: Path) -> None:
    """Write the files under vendor_dir/<dir>/, drop unlisted ones there, record the sha256s."""
    package_dir = vendor_dir / package.dir
    if not contents[package.license_file].strip():
        raise AssetError(f"{package.name}@{package.version}: the licence {package.license_file} is empty")
    wanted = {package_dir / dest for dest in contents}
    if package_dir.is_dir():
        for path in package_dir.rglob("*"):
            if path.is_file() and path not in wanted:
                path.unlink()
    for item in package.files:
        path = package_dir / item.dest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[item.dest])
        item.sha256 = hashlib.sha256(contents[item.dest]).hexdigest()


def update(packages: list[Package], only: str | None, vendor_dir: Path, registry: str) -> None:
    for package in packages:
        if only is not None and package.name != only:
            continue
        print(f"{package.name}@{package.version} -> {vendor_dir / package.dir}/")
        install(package, extract(package, fetch_tarball(package, registry)), vendor_dir)
        save_manifest(packages, vendor_dir)  # after each package: what is on disk is what the manifest says


def upgrade(packages: list[Package], spec: str, registry: str) -> str:
    """Set the named package's version and integrity from the registry; returns its name."""
    name, _, version = spec.rpartition("@")
    if not name or not version:
        raise AssetError(f"--upgrade {spec!r}: expected NAME@VERSION, e.g. @xterm/xterm@6.0.0")
    for package in packages:
        if package.name == name:
            _, package.integrity = registry_dist(name, version, registry)
            package.version = version
            return name
    known = ", ".join(p.name for p in packages)
    raise AssetError(f"--upgrade: {name} is not in {MANIFEST_NAME} ({known}); add an entry for it there first")


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="offline: the vendored files match the manifest")
    mode.add_argument("--upgrade", metavar="NAME@VERSION", help="move one package to another release")
    parser.add_argument("--registry", default=REGISTRY, help=f"npm registry URL (default {REGISTRY})")
    parser.add_argument("--vendor-dir", type=Path, default=VENDOR_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    vendor_dir: Path = args.vendor_dir.resolve()
    try:
        if args.check:
            problems = check(vendor_dir)
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1 if problems else 0
        packages = load_manifest(vendor_dir)
        only = upgrade(packages, args.upgrade, args.registry) if args.upgrade else None
        update(packages, only, vendor_dir, args.registry)
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
