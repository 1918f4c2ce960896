"""First-start factories of a controller's state: its CA and server certificate, operator profiles, users.

``fleetops-controller init``, ``operator issue`` and ``dev`` (``controller/cli.py``,
``controller/dev.py``) all build state through these, so neither front end imports the other.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleetops.common import pki
from fleetops.common.profile import write_profile
from fleetops.controller.app import ensure_server_certificate
from fleetops.controller.settings import ControllerSettings
from fleetops.controller.ssh import SshAuthority
from fleetops.controller.store import database
from fleetops.controller.users.service import UserService


def init_state(settings: ControllerSettings) -> pki.CertificateAuthority:
    """Create the CA, the SSH CAs and the server certificate unless they exist; returns the CA.

    The SSH CAs are made here too (not only at the first ``serve``), so that ``ca/`` copied to other
    replicas right after ``init`` already holds them: every replica must certify with the same ones.
    """
    if (settings.ca_dir / "ca.pem").exists():
        authority = pki.CertificateAuthority.load(settings.ca_dir)
    else:
        authority = pki.CertificateAuthority.create()
        authority.save(settings.ca_dir)
    SshAuthority.load(settings.ca_dir, create=True)
    ensure_server_certificate(settings, authority)
    return authority


def issue_operator_profile(
    authority: pki.CertificateAuthority, operator: str, controller: str, directory: Path, lifetime: timedelta
) -> Path:
    """Write an opsctl profile for ``operator`` (a new key and a certificate from ``authority``) to ``directory``."""
    key = pki.generate_private_key()
    csr = pki.load_csr(pki.build_csr(key, operator))
    cert = authority.issue_operator_certificate(csr, operator, lifetime)
    write_profile(
        directory,
        controller=controller,
        operator=operator,
        key_pem=pki.private_key_pem(key),
        cert_pem=pki.cert_pem(cert),
        ca_pem=pki.cert_pem(authority.cert),
    )
    return directory


async def ensure_user(settings: ControllerSettings, name: str, roles: list[str]) -> None:
    """Create the operator ``name`` with ``roles`` unless it exists (init and ``operator issue``)."""
    engine = database.create_engine(settings.effective_database_url)
    try:
        await database.upgrade(engine)
        authority = pki.CertificateAuthority.load(settings.ca_dir)
        await UserService(database.session_factory(engine), authority).ensure("controller", name, roles)
    finally:
        await engine.dispose()
