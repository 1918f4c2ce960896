"""The installer download: the controller's addresses filled in, a Host header that is no name refused."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from fleetops.common import pki
from fleetops.controller.console.agent_downloads import AgentDownloads


@dataclass
class Manifest:
    arch: str
    file_name: str
    sha256: str


@dataclass
class Release:
    manifest: Manifest


class Releases:
    async def list_releases(self) -> list[Release]:
        return [Release(Manifest("amd64", "fleetops-agent_0.1.1-1_amd64.deb", "ab" * 32))]


async def install_script(host: str) -> Response:
    downloads = AgentDownloads(Releases(), pki.CertificateAuthority.create().cert, agent_port=7443, enroll_port=7444)  # type: ignore[arg-type]  # a stand-in
    scope = {
        "type": "http", "method": "GET", "scheme": "https", "path": "/agent/install.sh", "query_string": b"",
        "headers": [(b"host", host.encode())], "server": ("127.0.0.1", 7445),
    }  # fmt: skip
    return await downloads.install_script(Request(scope))


async def test_the_installer_names_the_controller_as_the_host_reached_it() -> None:
    script = await install_script("fleet.example.com:7445")
    text = bytes(script.body).decode()
    assert script.status_code == 200
    assert "fleet.example.com:7443" in text and "https://fleet.example.com:7445/agent" in text
    assert "fleetops-agent_0.1.1-1_amd64.deb" in text


async def test_a_host_header_that_is_no_name_gets_no_script() -> None:
    refused = await install_script("x$(reboot):7445")
    assert refused.status_code == 400 and b"$(" not in bytes(refused.body)
