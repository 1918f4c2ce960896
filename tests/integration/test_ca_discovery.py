"""CA discovery by fingerprint and mutual TLS against real gRPC aio servers on 127.0.0.1."""

from __future__ import annotations

import os

os.environ["GRPC_VERBOSITY"] = "ERROR"  # before grpc is imported: keep handshake failures out of the log

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest
from cryptography import x509

from fleetops.common import pki
from fleetops.common.errors import Unauthenticated, Unavailable

pytestmark = pytest.mark.asyncio

LIFETIME = timedelta(hours=1)
RPC_TIMEOUT = 10.0


@dataclass
class Server:
    port: int
    ca: pki.CertificateAuthority
    seen: list[str]  # URI SANs of the callers, as read from the auth context


def _identity_handler(seen: list[str]) -> grpc.GenericRpcHandler:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        # grpcio decodes the property names: the key is the str "x509_pem_cert", the values are bytes.
        pems = context.auth_context()["x509_pem_cert"]
        identity = pki.identity_from_cert(pki.load_cert(pems[0]))
        seen.append(identity.uri())
        return identity.uri().encode() + b"|" + request

    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(echo, request_deserializer=None, response_serializer=None)},
    )


async def _start(ca: pki.CertificateAuthority, require_client_auth: bool) -> tuple[grpc.aio.Server, Server]:
    key = pki.generate_private_key()
    cert = ca.issue_server_certificate(key.public_key(), ["localhost"], ["127.0.0.1"], LIFETIME)
    ca_pem = pki.cert_pem(ca.cert)
    credentials = grpc.ssl_server_credentials(
        [(pki.private_key_pem(key), pki.cert_pem(cert) + ca_pem)],  # present leaf + CA
        root_certificates=ca_pem,
        require_client_auth=require_client_auth,
    )
    seen: list[str] = []
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_identity_handler(seen),))
    port = server.add_secure_port("127.0.0.1:0", credentials)
    assert port > 0
    await server.start()
    return server, Server(port, ca, seen)


@pytest.fixture
async def tls_server() -> AsyncIterator[Server]:
    server, info = await _start(pki.CertificateAuthority.create(), require_client_auth=False)
    yield info
    await server.stop(grace=None)


@pytest.fixture
async def mtls_server() -> AsyncIterator[Server]:
    server, info = await _start(pki.CertificateAuthority.create(), require_client_auth=True)
    yield info
    await server.stop(grace=None)


# --- discovery --------------------------------------------------------------------------------


async def test_fetch_unverified_chain_returns_leaf_then_ca(tls_server: Server) -> None:
    chain = await asyncio.to_thread(pki.fetch_unverified_chain, "127.0.0.1", tls_server.port, 5.0)
    assert len(chain) == 2
    assert chain[1] == tls_server.ca.cert
    assert chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


async def test_discover_ca_with_right_fingerprint(tls_server: Server) -> None:
    expected = pki.fingerprint_sha256(tls_server.ca.cert)
    pin = "SHA256:" + ":".join(expected[i : i + 2] for i in range(0, 64, 2)).upper()
    found = await asyncio.to_thread(pki.discover_ca, "127.0.0.1", tls_server.port, pin, 5.0)
    assert found == tls_server.ca.cert
    assert pki.fingerprint_sha256(found) == expected


async def test_discover_ca_with_wrong_fingerprint(tls_server: Server) -> None:
    other = pki.fingerprint_sha256(pki.CertificateAuthority.create().cert)
    with pytest.raises(Unauthenticated, match="presented no CA certificate with fingerprint") as info:
        await asyncio.to_thread(pki.discover_ca, "127.0.0.1", tls_server.port, other, 5.0)
    assert "fleetops-controller ca fingerprint" in info.value.hint


async def test_discover_ca_refuses_pinning_the_leaf(tls_server: Server) -> None:
    chain = await asyncio.to_thread(pki.fetch_unverified_chain, "127.0.0.1", tls_server.port, 5.0)
    leaf_pin = pki.fingerprint_sha256(chain[0])
    with pytest.raises(Unauthenticated, match="not a CA certificate"):
        await asyncio.to_thread(pki.discover_ca, "127.0.0.1", tls_server.port, leaf_pin, 5.0)


async def test_discover_ca_connection_refused() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
        await asyncio.to_thread(pki.discover_ca, "127.0.0.1", port, "0" * 64, 5.0)


# --- mutual TLS -------------------------------------------------------------------------------


def _client_credentials(issuer: pki.CertificateAuthority, trusted: pki.CertificateAuthority, host_id: str):
    key = pki.generate_private_key()
    csr = pki.load_csr(pki.build_csr(key, host_id))
    cert = issuer.issue_host_certificate(csr, host_id, LIFETIME)
    return grpc.ssl_channel_credentials(
        root_certificates=pki.cert_pem(trusted.cert),
        private_key=pki.private_key_pem(key),
        certificate_chain=pki.cert_pem(cert),
    )


async def _echo(port: int, credentials: grpc.ChannelCredentials, payload: bytes) -> bytes:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        call = channel.unary_unary("/test.Echo/Echo", request_serializer=None, response_deserializer=None)
        return await call(payload, timeout=RPC_TIMEOUT)


async def test_mtls_server_sees_host_identity(mtls_server: Server) -> None:
    credentials = _client_credentials(mtls_server.ca, mtls_server.ca, "h-0123abcd")
    reply = await _echo(mtls_server.port, credentials, b"ping")
    assert reply == b"fleetops://host/h-0123abcd|ping"
    assert mtls_server.seen == ["fleetops://host/h-0123abcd"]


async def test_mtls_server_rejects_foreign_client_certificate(mtls_server: Server) -> None:
    foreign = pki.CertificateAuthority.create()
    credentials = _client_credentials(foreign, mtls_server.ca, "h-intruder")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _echo(mtls_server.port, credentials, b"ping")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert mtls_server.seen == []
