"""First-start factories: the state directory's CA is made once and reused; operator profiles load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleetops.common import pki
from fleetops.common.profile import load_profile
from fleetops.controller.bootstrap import init_state, issue_operator_profile
from fleetops.controller.settings import ControllerSettings


def test_init_state_creates_the_ca_once_and_reuses_it(tmp_path: Path) -> None:
    settings = ControllerSettings(state_dir=tmp_path)
    first = init_state(settings)
    assert (settings.ca_dir / "ca.pem").exists() and (settings.server_dir / "server.pem").exists()
    ssh_cas = [(settings.ca_dir / name).read_bytes() for name in ("ssh-host-ca", "ssh-user-ca")]
    again = init_state(settings)
    assert pki.fingerprint_sha256(again.cert) == pki.fingerprint_sha256(first.cert)
    # The SSH CAs are made by init too (ca/ copied to replicas right after holds them), and kept.
    assert [(settings.ca_dir / name).read_bytes() for name in ("ssh-host-ca", "ssh-user-ca")] == ssh_cas


def test_an_operator_profile_carries_a_certificate_for_that_operator(tmp_path: Path) -> None:
    authority = init_state(ControllerSettings(state_dir=tmp_path / "state"))
    directory = issue_operator_profile(authority, "alice", "ctl.example:7443", tmp_path / "profile", timedelta(hours=1))
    profile = load_profile(str(directory))
    assert (profile.controller, profile.operator) == ("ctl.example:7443", "alice")
    cert = pki.load_cert((directory / "operator.pem").read_bytes())
    assert pki.identity_from_cert(cert) == pki.PeerIdentity("operator", "alice")
