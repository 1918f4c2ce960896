"""`opsctl ssh-config` and `opsctl proxy` without a controller: the ssh configuration and its install."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.profile import Profile
from fleetops.opsctl import ssh


def profile(tmp_path: Path) -> Profile:
    return Profile(directory=tmp_path / "my profile", controller="ctl.example:8443", operator="alice")


def test_the_config_block_reaches_hosts_through_opsctl_proxy_with_the_profiles_key(tmp_path: Path) -> None:
    block = ssh.config_block(profile(tmp_path), "/usr/bin/opsctl")
    lines = [line.strip() for line in block.splitlines()]
    assert "Host *.fleet" in lines
    # The profile path has a space: quoted for the shell ssh runs the ProxyCommand with.
    assert f"ProxyCommand /usr/bin/opsctl --profile '{tmp_path / 'my profile'}' proxy --login %r %h" in lines
    assert f'CertificateFile "{tmp_path / "my profile" / "ssh" / "id_ed25519-cert.pub"}"' in lines
    assert "StrictHostKeyChecking yes" in lines and "ForwardAgent no" in lines and "IdentitiesOnly yes" in lines


def test_stock_ssh_parses_the_block(tmp_path: Path) -> None:
    if subprocess.run(["ssh", "-V"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no OpenSSH client here (apt-get install openssh-client)")
    config = tmp_path / "config"
    config.write_text(ssh.config_block(profile(tmp_path), "/usr/bin/opsctl"))
    shown = subprocess.run(
        ["ssh", "-G", "-F", str(config), "root@web-1.fleet"], capture_output=True, text=True, check=True
    ).stdout
    assert "proxycommand /usr/bin/opsctl --profile" in shown and "proxy --login %r %h" in shown  # expanded at connect
    assert "stricthostkeychecking true" in shown


def test_install_includes_the_block_first_and_only_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host old\n    User bob\n")
    target = ssh.install("Host *.fleet\n", home)
    ssh.install("Host *.fleet\n", home)
    assert target.read_text() == "Host *.fleet\n"
    config = (home / ".ssh" / "config").read_text().splitlines()
    include = f'Include "{target.resolve()}"'
    assert config[0] == include  # before any Host line, or it would apply to that host only
    assert config.count(include) == 1 and "Host old" in config


def test_proxy_drops_the_fleet_domain() -> None:
    assert ssh.proxy_host("web-1.fleet") == "web-1"
    assert ssh.proxy_host("web-1") == "web-1"
    with pytest.raises(InvalidInput):
        ssh.proxy_host(".fleet")


def test_a_missing_or_unreadable_certificate_has_no_expiry(tmp_path: Path) -> None:
    assert ssh.certificate_expiry(tmp_path) is None
    (tmp_path / ssh.CERT_FILE).write_text("not a certificate\n")
    assert ssh.certificate_expiry(tmp_path) is None
