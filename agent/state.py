"""The agent's state directory: who this host is and the credentials it connects with.

Layout::

    agent.json   {"host_id", "controller": "host:port", "hostname"}
    host.key     the host's private key (0600, generated here, never sent anywhere)
    host.pem     the current client certificate (short-lived, renewed over the mTLS link)
    ca.pem       the controller's CA, pinned at registration
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from fleetops.common import pki
from fleetops.common.errors import InvalidInput, NotFound


def default_state_dir() -> Path:
    if os.name != "nt" and os.geteuid() == 0:
        return Path("/var/lib/fleetops-agent")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fleetops-agent"


@dataclass(frozen=True)
class AgentIdentity:
    host_id: str
    controller: str
    hostname: str
    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class AgentState:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.meta = directory / "agent.json"
        self.key = directory / "host.key"
        self.cert = directory / "host.pem"
        self.ca = directory / "ca.pem"

    def registered(self) -> bool:
        return self.meta.exists()

    def load(self) -> AgentIdentity:
        """The identity to connect with.

        Raises:
            NotFound: the host is not registered yet.
            InvalidInput: the state directory is damaged (key and certificate do not match).
        """
        if not self.meta.exists():
            raise NotFound(
                f"this host is not registered (no {self.meta})",
                "register it: fleetops-agent register --controller HOST:PORT --activation-id ID "
                "--activation-code CODE --ca-fingerprint SHA256",
            )
        self._finish_interrupted_renewal()
        doc = json.loads(self.meta.read_text())
        key_pem, cert_pem = self.key.read_bytes(), self.cert.read_bytes()
        if _public_bytes(pki.load_private_key(key_pem).public_key()) != _public_bytes(
            pki.load_cert(cert_pem).public_key()
        ):
            raise InvalidInput(
                f"the key and certificate in {self.directory} do not match",
                "register the host again with a new activation",
            )
        return AgentIdentity(
            host_id=doc["host_id"],
            controller=doc["controller"],
            hostname=doc.get("hostname", ""),
            key_pem=key_pem,
            cert_pem=cert_pem,
            ca_pem=self.ca.read_bytes(),
        )

    def save_registration(
        self, *, host_id: str, controller: str, hostname: str, key_pem: bytes, cert_pem: bytes, ca_pem: bytes
    ) -> None:
        pki.write_secret_file(self.key, key_pem)
        pki.write_public_file(self.cert, cert_pem)
        pki.write_public_file(self.ca, ca_pem)
        doc = {"host_id": host_id, "controller": controller, "hostname": hostname}
        pki.write_public_file(self.meta, (json.dumps(doc, indent=2) + "\n").encode())

    def save_renewed(self, key_pem: bytes, cert_pem: bytes) -> None:
        """Replace key and certificate; a crash between the two renames is repaired on load."""
        next_key, next_cert = self.key.with_suffix(".key.next"), self.cert.with_suffix(".pem.next")
        pki.write_secret_file(next_key, key_pem)
        pki.write_public_file(next_cert, cert_pem)
        os.replace(next_key, self.key)
        os.replace(next_cert, self.cert)

    def _finish_interrupted_renewal(self) -> None:
        next_key, next_cert = self.key.with_suffix(".key.next"), self.cert.with_suffix(".pem.next")
        if next_cert.exists() and not next_key.exists():
            os.replace(next_cert, self.cert)  # the key was already moved into place
        elif next_key.exists():
            next_key.unlink()  # renewal never finished: the old pair is still whole
            next_cert.unlink(missing_ok=True)
