"""Fetch a release over the host's own mTLS link (AgentService.DownloadRelease) and verify it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import grpc

from fleetops.agent.state import AgentIdentity
from fleetops.common import limits
from fleetops.common.release_signature import (
    MAX_PACKAGE_BYTES,
    ReleaseManifest,
    ReleaseRefused,
    check_file_name,
    verify_package,
)
from fleetops.v1 import agent_pb2, agent_pb2_grpc

DOWNLOAD_TIMEOUT = 600.0


class DownloadFailed(Exception):
    """The release could not be fetched (the controller refused or the link failed); nothing changed."""


def download_release(identity: AgentIdentity, file_name: str, directory: Path) -> tuple[Path, ReleaseManifest]:
    """Download ``file_name`` into ``directory`` and verify it; the verified file and its manifest.

    The bytes go to a temporary file first and take their final name only once verified, so a
    refused package never sits where an install or a rollback would pick it up.

    Raises:
        DownloadFailed: the controller refused, or the link failed.
        ReleaseRefused: the package does not match its signed manifest.
    """
    check_file_name(file_name)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = directory / file_name
    partial = directory / f".{file_name}.part"
    creds = grpc.ssl_channel_credentials(
        root_certificates=identity.ca_pem, private_key=identity.key_pem, certificate_chain=identity.cert_pem
    )
    options = limits.channel_options(receive=limits.AGENT_RECEIVE_BYTES, send=limits.CONTROLLER_RECEIVE_BYTES)
    digest = hashlib.sha256()
    size = 0
    header: agent_pb2.ReleaseHeader | None = None
    try:
        with grpc.secure_channel(identity.controller, creds, options=options) as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            request = agent_pb2.DownloadReleaseRequest(file_name=file_name)
            with partial.open("wb") as out:
                for chunk in stub.DownloadRelease(request, timeout=DOWNLOAD_TIMEOUT):
                    if chunk.WhichOneof("body") == "header":
                        header = chunk.header
                        continue
                    size += len(chunk.data)
                    if size > MAX_PACKAGE_BYTES:
                        raise ReleaseRefused(f"{file_name} is over {MAX_PACKAGE_BYTES} bytes")
                    digest.update(chunk.data)
                    out.write(chunk.data)
                out.flush()
                os.fsync(out.fileno())
    except grpc.RpcError as exc:
        partial.unlink(missing_ok=True)
        raise DownloadFailed(f"downloading {file_name} failed: {exc.code().name}: {exc.details()}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if header is None:
        partial.unlink(missing_ok=True)
        raise DownloadFailed(f"the controller sent {file_name} without its manifest")
    m = header.manifest
    manifest = ReleaseManifest(m.file_name, m.version, m.kind, m.arch, m.sha256, m.size, m.signature, m.key_id)
    try:
        if manifest.file_name != file_name:
            raise ReleaseRefused(f"asked for {file_name}, the controller sent the manifest of {manifest.file_name}")
        verify_package(manifest, header.public_key, digest.hexdigest(), size)
    except ReleaseRefused:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(final)
    return final, manifest
