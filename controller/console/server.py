"""The console's HTTPS listener: uvicorn in the controller's own event loop.

uvicorn's ``Server.serve`` installs signal handlers of its own; the controller has its own, so
the server is started and shut down step by step instead, on a socket bound here (port 0 picks a
free port, as the other listeners do).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from fleetops.common.errors import InvalidInput

log = logging.getLogger(__name__)


class ConsoleServer:
    def __init__(self, app: ASGIApp, host: str, port: int, certfile: Path, keyfile: Path) -> None:
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=str(certfile),
            ssl_keyfile=str(keyfile),
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
            ws="websockets",
            ws_max_size=256 * 1024,
        )
        self._server = uvicorn.Server(self._config)
        self._socket: socket.socket | None = None

    async def start(self) -> int:
        """Listen; the port bound.

        Raises:
            InvalidInput: the address cannot be bound (in use, not this host's).
        """
        config = self._config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as exc:
            sock.close()
            raise InvalidInput(
                f"the console cannot listen on {config.host}:{config.port}: {exc.strerror or exc}",
                "give another --console-listen HOST:PORT, or --console-listen off",
            ) from None
        sock.listen(config.backlog)
        sock.setblocking(False)
        self._socket = sock
        config.load()
        self._server.lifespan = config.lifespan_class(config)
        await self._server.startup(sockets=[sock])
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._socket is None:
            return
        self._server.should_exit = True
        await self._server.shutdown(sockets=[self._socket])
        self._socket = None
