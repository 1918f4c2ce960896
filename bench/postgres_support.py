"""A PostgreSQL server for the replica benchmarks: a throwaway cluster, or one the operator names.

Replicas share one database, which SQLite cannot be, so ``--replicas N`` needs PostgreSQL.
``Postgres.start`` runs ``initdb`` and ``pg_ctl start`` from /usr/lib/postgresql/*/bin as the
``postgres`` user (the bench must run as root, as tests/conftest.py ``postgres_server`` does),
with the same settings as the tests (no fsync, 300 connections). ``Postgres.external`` wraps a
server URL given with ``--database-url`` instead. Either way ``new_database`` creates a fresh
database per fleet of controllers, and ``stop`` drops those (external) or stops the cluster.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from connect_support import run

SETTINGS = "-c fsync=off -c synchronous_commit=off -c max_connections=300"


@dataclass
class Postgres:
    """A PostgreSQL server URL without a database (``postgresql+asyncpg://USER@HOST:PORT``)."""

    url: str
    directory: Path | None = None  # the throwaway cluster's directory (None: an external server)
    pg_bin: Path | None = None
    databases: list[str] = field(default_factory=list)

    @classmethod
    def external(cls, url: str) -> Postgres:
        return cls(url.rstrip("/"))

    @classmethod
    async def start(cls) -> Postgres:
        """initdb and start a throwaway cluster on a free 127.0.0.1 port.

        Raises:
            RuntimeError: no PostgreSQL binaries, not root, or no port found.
        """
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        if not bins or os.geteuid() != 0 or shutil.which("runuser") is None:
            raise RuntimeError(
                "--replicas needs PostgreSQL: install it (apt-get install postgresql) and run the bench as root, "
                "or give --database-url postgresql+asyncpg://USER@HOST:PORT"
            )
        pg_bin = bins[0].parent
        directory = Path(tempfile.mkdtemp(prefix="fleetops-bench-pg.", dir="/tmp"))
        shutil.chown(directory, "postgres", "postgres")
        server = cls("", directory, pg_bin)
        data = str(directory / "data")
        init = ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
        await server._as_postgres("initdb", "-D", data, *init)
        log = directory / "server.log"
        for _ in range(5):
            port = _free_port()
            offset = log.stat().st_size if log.exists() else 0
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} {SETTINGS}"
            try:
                await server._as_postgres("pg_ctl", "-D", data, "-l", str(log), "-w", "-o", options, "start")
            except RuntimeError:
                if "already in use" in log.read_bytes()[offset:].decode(errors="replace"):
                    continue  # another process took the port between the probe and the bind
                raise
            server.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
            return server
        raise RuntimeError(f"PostgreSQL found no free port on 127.0.0.1 in 5 tries; see {log}")

    async def _as_postgres(self, tool: str, *args: str) -> None:
        assert self.pg_bin is not None
        await run("runuser", "-u", "postgres", "--", str(self.pg_bin / tool), *args, timeout=60)

    async def new_database(self, label: str) -> str:
        """CREATE DATABASE fleetops_bench_<pid>_<label>; its URL."""
        name = f"fleetops_bench_{os.getpid()}_{label}"
        await self._sql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return f"{self.url}/{name}"

    async def _sql(self, statement: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://") + "/postgres")
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def stop(self) -> None:
        """Stop the throwaway cluster and remove it; on an external server, drop the bench's databases."""
        if self.directory is None:
            for name in self.databases:
                await self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        try:
            await self._as_postgres("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        except RuntimeError as exc:
            print(f"warning: PostgreSQL did not stop: {exc}")
        shutil.rmtree(self.directory, ignore_errors=True)


def _free_port() -> int:
    """A port free on 127.0.0.1 a moment ago (PostgreSQL cannot bind port 0; start retries on a clash)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
