"""Shared fixtures: fresh controllers and agents as real processes, and databases to run them on."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from databases import new_postgres_database
from harness import candidate_port
from s3server import SeaweedS3, seaweed_fixture

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

POSTGRES_HINT = (
    "PostgreSQL tests skipped: set FLEETOPS_TEST_POSTGRES_URL=postgresql+asyncpg://USER@HOST:PORT/DB, "
    "or install PostgreSQL (apt-get install postgresql) and run the tests as root so they can start a "
    "throwaway cluster; CI sets FLEETOPS_REQUIRE_POSTGRES=1 and fails instead of skipping."
)


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL (no database chosen): given by env, or a throwaway cluster we start."""
    url = os.environ.get("FLEETOPS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    required = os.environ.get("FLEETOPS_REQUIRE_POSTGRES") == "1"
    pg_bin = _pg_bin()
    if pg_bin is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        if required:
            pytest.fail("FLEETOPS_REQUIRE_POSTGRES=1 but PostgreSQL cannot be started here. " + POSTGRES_HINT)
        pytest.skip(POSTGRES_HINT)
    directory = Path(tempfile.mkdtemp(prefix="fleetops-pg."))
    shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    log = directory / "server.log"

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)

    def start(port: int) -> bool:
        """Start on ``port``; False when another process holds it (PostgreSQL cannot bind port 0)."""
        offset = log.stat().st_size if log.exists() else 0
        try:
            as_postgres(
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "30",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} "
                "-c fsync=off -c synchronous_commit=off -c max_connections=300",
                "start",
            )
        except subprocess.CalledProcessError:
            if "already in use" in log.read_bytes()[offset:].decode(errors="replace"):
                return False
            raise
        return True

    as_postgres(
        str(pg_bin / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
    )
    port = candidate_port()
    for _ in range(5):
        if start(port):
            break
        port = candidate_port()
    else:
        pytest.fail(f"PostgreSQL found no free port on 127.0.0.1 in 5 tries; see {log}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real S3 server (SeaweedFS from PyPI) with SigV4 credentials, for the whole test session."""
    yield from seaweed_fixture(tmp_path_factory)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite (embedded default) and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fleetops.db'}"
    server = request.getfixturevalue("postgres_server")
    return new_postgres_database(server)
