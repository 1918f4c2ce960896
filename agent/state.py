"""The agent's state directory: who this host is and the credentials it connects with.

The long-running agent reads the certificate's validity from agent.json rather than parsing the
certificate, so it never loads the ``cryptography`` library (about 10 MiB of its memory); key
generation and signing requests happen in ``fleetops-agent register`` and ``fleetops-agent renew``.

Layout::

    agent.json   {"host_id", "controller": "host:port", "hostname",
                  "certificate": {"not_before", "not_after"}}   (ISO-8601, UTC)
    host.key     the host's private key (0600, generated here, never sent anywhere)
    host.pem     the current client certificate (short-lived, renewed over the mTLS link)
    ca.pem       the controller's CA, pinned at registration
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.files import write_public_file, write_secret_file


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
    not_before: datetime
    not_after: datetime

    @property
    def renewal_time(self) -> datetime:
        """Two thirds into the certificate's life (as ``pki.renewal_time``)."""
        return self.not_before + (self.not_after - self.not_before) * 2 / 3


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
            InvalidInput: the state directory is damaged.
        """
        if not self.meta.exists():
            raise NotFound(
                f"this host is not registered (no {self.meta})",
                "register it: fleetops-agent register --controller HOST:PORT --activation-id ID "
                "--activation-code CODE --ca-fingerprint SHA256",
            )
        self._finish_interrupted_renewal()
        try:
            doc = json.loads(self.meta.read_text())
            validity = doc["certificate"]
            return AgentIdentity(
                host_id=doc["host_id"],
                controller=doc["controller"],
                hostname=doc.get("hostname", ""),
                key_pem=self.key.read_bytes(),
                cert_pem=self.cert.read_bytes(),
                ca_pem=self.ca.read_bytes(),
                not_before=datetime.fromisoformat(validity["not_before"]),
                not_after=datetime.fromisoformat(validity["not_after"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(
                f"the agent state in {self.directory} is damaged: {exc}",
                "register the host again: fleetops-agent register --force ...",
            ) from exc

    def save_registration(
        self,
        *,
        host_id: str,
        controller: str,
        hostname: str,
        key_pem: bytes,
        cert_pem: bytes,
        ca_pem: bytes,
        not_before: datetime,
        not_after: datetime,
    ) -> None:
        write_secret_file(self.key, key_pem)
        write_public_file(self.cert, cert_pem)
        write_public_file(self.ca, ca_pem)
        doc: dict[str, object] = {"host_id": host_id, "controller": controller, "hostname": hostname}
        self._write_meta(doc, not_before, not_after)

    def save_renewed(self, key_pem: bytes, cert_pem: bytes, not_before: datetime, not_after: datetime) -> None:
        """Replace key and certificate; a crash between the two renames is repaired on load.

        The validity in agent.json is written last: if a crash leaves it stale, the agent only
        renews early (and double-checks the certificate itself before calling it expired).
        """
        next_key, next_cert = self.key.with_suffix(".key.next"), self.cert.with_suffix(".pem.next")
        write_secret_file(next_key, key_pem)
        write_public_file(next_cert, cert_pem)
        os.replace(next_key, self.key)
        os.replace(next_cert, self.cert)
        self._write_meta(json.loads(self.meta.read_text()), not_before, not_after)

    def _write_meta(self, doc: dict[str, object], not_before: datetime, not_after: datetime) -> None:
        doc = {**doc, "certificate": {"not_before": not_before.isoformat(), "not_after": not_after.isoformat()}}
        write_public_file(self.meta, (json.dumps(doc, indent=2) + "\n").encode())

    def _finish_interrupted_renewal(self) -> None:
        next_key, next_cert = self.key.with_suffix(".key.next"), self.cert.with_suffix(".pem.next")
        if next_cert.exists() and not next_key.exists():
            os.replace(next_cert, self.cert)  # the key was already moved into place
        elif next_key.exists():
            next_key.unlink()  # renewal never finished: the old pair is still whole
            next_cert.unlink(missing_ok=True)
