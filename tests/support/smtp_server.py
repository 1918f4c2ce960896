"""A real SMTP server for email tests: aiosmtpd with STARTTLS required and authentication.

``SmtpServer(tmp_path)`` listens on 127.0.0.1 with a certificate for 127.0.0.1 issued by a CA of
its own (``ca_file``: what the controller's ``--smtp-ca-file`` trusts). Only ``USER``/``PASSWORD``
may send, and only after STARTTLS. ``messages`` collects what was accepted; ``wait_for(n)`` waits on
a condition.
"""

from __future__ import annotations

import ssl
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import candidate_port

USER = "fleetops"
PASSWORD = "s3cret-smtp"


def _certificate(directory: Path) -> tuple[Path, Path, Path]:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test mail CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


class SmtpServer:
    def __init__(self, directory: Path) -> None:
        self.ca_file, cert_file, key_file = _certificate(directory)
        self.password_file = directory / "password"
        self.password_file.write_text(PASSWORD + "\n")
        self.messages: list[Message] = []
        self.refused_logins = 0
        self._changed = threading.Condition()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        server = self

        class Handler:
            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
                with server._changed:
                    server.messages.append(message_from_bytes(envelope.original_content or envelope.content))
                    server._changed.notify_all()
                return "250 OK"

        def authenticate(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
            if not ok:
                server.refused_logins += 1
            return AuthResult(success=ok)

        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=candidate_port(),
            tls_context=context,
            require_starttls=True,
            authenticator=authenticate,
            auth_require_tls=True,
            auth_required=True,
        )
        self._controller.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._controller.port}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Message]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"{len(self.messages)} messages arrived, expected {count}")
            return list(self.messages)

    def close(self) -> None:
        self._controller.stop()
