"""HTTPS downloads for installing agents, on the console's listener: ``/agent/...``.

A fresh host has curl and sh, not a gRPC client, so the one-line install (docs/install.md) fetches
over HTTPS. These routes need no login: they serve only what is public anyway (the CA
certificate, the installer, the signed packages); registering still needs an activation code.

    /agent/ca.der, /agent/ca.pem     the fleet CA (the one-line command checks ca.der's SHA-256)
    /agent/install.sh                the installer, with this controller's addresses filled in
    /agent/releases/FILE             a release package (FILE as ``opsctl agent releases`` lists it)
"""

from __future__ import annotations

import re
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from fleetops.common.errors import FleetopsError
from fleetops.controller.releases.service import AgentReleases

DEB = "application/vnd.debian.binary-package"
#: What a Host header may name for the installer: a DNS name, an IPv4 or an IPv6 address.
HOST_NAME = re.compile(r"[A-Za-z0-9.:-]{1,253}")


class AgentDownloads:
    """The routes; ``agent_port`` and ``enroll_port`` are what the installer registers against."""

    def __init__(self, releases: AgentReleases, ca_cert: x509.Certificate, agent_port: int, enroll_port: int) -> None:
        self._releases = releases
        self._ca_cert = ca_cert
        self._agent_port = agent_port
        self._enroll_port = enroll_port

    def routes(self) -> list[Route]:
        return [
            Route("/agent/ca.der", self.ca_der),
            Route("/agent/ca.pem", self.ca_pem),
            Route("/agent/install.sh", self.install_script),
            Route("/agent/releases/{file}", self.package),
        ]

    async def ca_der(self, request: Request) -> Response:
        return Response(self._ca_cert.public_bytes(serialization.Encoding.DER), media_type="application/pkix-cert")

    async def ca_pem(self, request: Request) -> Response:
        return Response(self._ca_cert.public_bytes(serialization.Encoding.PEM), media_type="application/x-pem-file")

    async def install_script(self, request: Request) -> Response:
        # The host reaches the controller by the name it used for this download; the name goes
        # into a shell script, so only a host name or an address is accepted.
        host = request.url.hostname or "localhost"
        if not HOST_NAME.fullmatch(host):
            return PlainTextResponse("bad Host header: give the controller's name or address\n", status_code=400)
        host = f"[{host}]" if ":" in host else host
        latest: dict[str, str] = {}
        for release in await self._releases.list_releases():  # newest first: the first per arch wins
            m = release.manifest
            latest.setdefault(m.arch, f"{m.arch} {m.file_name} {m.sha256}")
        port = request.url.port or 443
        text = (
            resources.files("fleetops.controller.releases")
            .joinpath("install-agent.sh")
            .read_text()
            .replace("@CONTROLLER@", f"{host}:{self._agent_port}")
            .replace("@ENROLL_PORT@", str(self._enroll_port))
            .replace("@BASE_URL@", f"https://{host}:{port}/agent")
            .replace("@RELEASES@", "\n".join(latest.values()))
        )
        return PlainTextResponse(text, media_type="text/x-shellscript")

    async def package(self, request: Request) -> Response:
        try:
            release = await self._releases.get(request.path_params["file"])
        except FleetopsError as exc:
            return PlainTextResponse(exc.message + "\n", status_code=404)
        return StreamingResponse(
            self._releases.read(release.manifest.file_name),
            media_type=DEB,
            headers={"Content-Length": str(release.manifest.size)},
        )
