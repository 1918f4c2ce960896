"""OperatorService calls for the web console (controller/console): one-time links.

Any enabled operator may ask for a link for themselves: the browser session it becomes acts
with their own certificate, so it has exactly their rights (every page is an operator call).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from fleetops.common.errors import Conflict
from fleetops.controller.console.store import ConsoleStore
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class ConsoleCalls(OperatorAdapter):
    #: The console's links and where browsers reach it (``https://HOST:PORT``); set by the
    #: composition root when the console is served.
    console_links: ConsoleStore | None = None
    console_url: str = ""

    @operator_call("console.link")
    async def CreateConsoleLink(self, request: operator_pb2.CreateConsoleLinkRequest, peer: Peer) -> tuple[Any, str]:
        if self.console_links is None or not self.console_url:
            raise Conflict(
                "this controller does not serve the web console",
                "start it with --console-listen HOST:PORT (docs/console.md)",
            )
        pem = peer.certificate.public_bytes(Encoding.PEM).decode()
        token, expires = await self.console_links.create_link(peer.actor, pem, peer.expires_at)
        return (
            operator_pb2.ConsoleLink(
                url=f"{self.console_url}/login?t={token}",
                expires_at=convert.timestamp(expires),
                session_expires_at=convert.timestamp(peer.expires_at),
            ),
            peer.identity.name,
        )
