"""Fakes for the rpc room's unit tests: a servicer context, and certificates from a real (in-memory) CA."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import grpc
import pytest
from cryptography import x509

from fleetops.common import pki


class Aborted(Exception):
    """What FakeContext.abort raises (grpc's own raises an AbortError the server turns into the status)."""


class FakeContext:
    """The parts of ``grpc.aio.ServicerContext`` the adapters use: peer, auth context, abort."""

    Aborted = Aborted

    def __init__(self, certificate: x509.Certificate | None, peer: str = "ipv4:192.0.2.7:50123") -> None:
        self._pems: Sequence[bytes] = [pki.cert_pem(certificate)] if certificate is not None else []
        self._peer = peer
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing: dict[str, Any] = {}

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> dict[str, Sequence[bytes]]:
        return {"x509_pem_cert": self._pems} if self._pems else {}

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[tuple[str, Any]] = ()
    ) -> None:
        assert self.code is None, "aborted twice"
        self.code, self.details, self.trailing = code, details, dict(trailing_metadata)
        raise Aborted(f"{code.name}: {details}")


@pytest.fixture
def context() -> type[FakeContext]:
    """The fake context class: ``context(certificate)``; ``context.Aborted`` is what abort raises."""
    return FakeContext


@pytest.fixture(scope="module")
def authority() -> pki.CertificateAuthority:
    return pki.CertificateAuthority.create()


@pytest.fixture(scope="module")
def operator_cert(authority: pki.CertificateAuthority) -> Callable[[str], x509.Certificate]:
    """A client certificate the CA issues to operator ``name``."""

    def issue(name: str) -> x509.Certificate:
        csr = pki.load_csr(pki.build_csr(pki.generate_private_key(), name))
        return authority.issue_operator_certificate(csr, name, timedelta(hours=1))

    return issue


@pytest.fixture(scope="module")
def host_cert(authority: pki.CertificateAuthority) -> x509.Certificate:
    csr = pki.load_csr(pki.build_csr(pki.generate_private_key(), "h-1"))
    return authority.issue_host_certificate(csr, "h-1", timedelta(hours=1))
