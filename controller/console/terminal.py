"""The browser terminal: xterm.js over a WebSocket into the same session broker as ``opsctl session``.

The page's script opens ``/terminal/ws`` with the host, the login and the window's size. The
socket is accepted only from the console's own origin (a cross-site page cannot open it: the
``Origin`` check, the strict cookie and the form token in the URL all stand in the way), for a
live session. Behind it the servicer's ``Session`` call runs exactly as for opsctl, with a
:class:`TerminalContext` in place of the gRPC stream: the same authorization of the host and
login, the same recording and audit events. Frames:

- browser -> console: JSON text, ``{"t": "i", "d": "typed text"}`` or ``{"t": "r", "c": COLS, "r": ROWS}``;
- console -> browser: the terminal's output as binary frames, and JSON text for events:
  ``{"t": "started", "session": ID, "host": NAME}``, ``{"t": "ended", "exit_code": N, "reason": ...}``,
  ``{"t": "error", "message": ..., "hint": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from fleetops.common.errors import FleetopsError
from fleetops.common.terminal import MAX_COLUMNS, MAX_ROWS
from fleetops.controller.console.calls import CallFailed, Calls, ConsoleContext, client_address
from fleetops.controller.console.store import SESSION_COOKIE, ConsoleSession
from fleetops.v1 import operator_pb2, session_pb2

if TYPE_CHECKING:
    from fleetops.controller.console.web import Console

log = logging.getLogger(__name__)

#: The largest frame the browser may send (typed or pasted text).
MAX_FRAME = 64 * 1024
TERM = "xterm-256color"


def routes(console: Console) -> list[BaseRoute]:
    return [
        Route("/terminal/{host}", console.page(lambda r, s, c: terminal_page(console, r, s, c))),
        WebSocketRoute("/terminal-ws", lambda ws: terminal_socket(console, ws)),
    ]


async def terminal_page(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    host = await calls.unary("GetHost", operator_pb2.GetHostRequest(host=request.path_params["host"]))
    login = request.query_params.get("login", "").strip()
    return console.render("terminal.html", session=session, host=host, login=login)


class TerminalContext(ConsoleContext):
    """A ``Session`` call's context whose writes go to the browser's socket."""

    def __init__(self, certificate_pem: str, address: str) -> None:
        super().__init__(certificate_pem, address)
        self.outbound: asyncio.Queue[operator_pb2.SessionServerMessage] = asyncio.Queue(maxsize=64)

    async def write(self, message: operator_pb2.SessionServerMessage) -> None:
        await self.outbound.put(message)


def _clamp(value: int) -> int:
    """A terminal dimension the broker accepts (common/terminal.py)."""
    return max(1, min(value, MAX_COLUMNS, MAX_ROWS))


def _size(value: str, default: int) -> int:
    return _clamp(int(value)) if value.isdigit() and len(value) <= 4 else default


async def terminal_socket(console: Console, websocket: WebSocket) -> None:
    origin = websocket.headers.get("origin", "")
    own = f"https://{websocket.headers.get('host', '')}"
    session = await console.links.session(websocket.cookies.get(SESSION_COOKIE, ""))
    q = websocket.query_params
    if origin != own or session is None or not session.csrf_ok(q.get("csrf", "")):
        await websocket.close(code=1008)  # before accept: the handshake is refused (403)
        return
    await websocket.accept()
    context = TerminalContext(session.certificate_pem, client_address(websocket))
    inbound: asyncio.Queue[operator_pb2.SessionClientMessage | None] = asyncio.Queue()
    start = operator_pb2.StartSessionRequest(
        host=q.get("host", ""),
        run_as=q.get("login", ""),
        term=TERM,
        size=session_pb2.TerminalSize(cols=_size(q.get("cols", ""), 80), rows=_size(q.get("rows", ""), 24)),
    )
    await inbound.put(operator_pb2.SessionClientMessage(start=start))

    async def requests() -> AsyncIterator[operator_pb2.SessionClientMessage]:
        while (message := await inbound.get()) is not None:
            yield message

    call = asyncio.create_task(console.servicer.Session(requests(), context))
    to_browser = asyncio.create_task(_to_browser(websocket, context, inbound))
    from_browser = asyncio.create_task(_from_browser(websocket, inbound))
    try:
        await asyncio.wait({call, to_browser, from_browser}, return_when=asyncio.FIRST_COMPLETED)
        if call.done() and not to_browser.done():
            # The call ended (refused, or after its last message): let what it wrote reach the browser.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_drain(websocket, context), 5)
        if call.done() and not call.cancelled() and call.exception() is not None:
            await _send_error(websocket, call.exception())
    finally:
        await inbound.put(None)  # the call sees the browser's end as the end of its stream
        for task in (to_browser, from_browser):
            task.cancel()
        await asyncio.wait({call}, timeout=5)  # the session ends its recording and audit itself
        call.cancel()
        await asyncio.gather(call, to_browser, from_browser, return_exceptions=True)
        with contextlib.suppress(Exception):
            await websocket.close()


async def _send_error(websocket: WebSocket, error: BaseException | None) -> None:
    if isinstance(error, CallFailed | FleetopsError):
        payload = {"t": "error", "message": error.message, "hint": error.hint}
    else:
        log.error("a console terminal failed", exc_info=error)
        payload = {"t": "error", "message": "the session failed inside the controller", "hint": "see its log"}
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps(payload))


async def _forward(
    websocket: WebSocket,
    message: operator_pb2.SessionServerMessage,
    inbound: asyncio.Queue[operator_pb2.SessionClientMessage | None] | None,
) -> bool:
    """Pass one server message to the browser; False after the last one."""
    kind = message.WhichOneof("body")
    if kind == "output":
        await websocket.send_bytes(message.output.data)
        if inbound is not None:
            await inbound.put(operator_pb2.SessionClientMessage(output_ack=message.output.seq))
    elif kind == "started":
        s = message.started
        await websocket.send_text(json.dumps({"t": "started", "session": s.session_id, "host": s.host_name}))
    elif kind == "ended":
        e = message.ended
        ended = {"t": "ended", "exit_code": e.exit_code, "reason": e.reason, "message": e.message}
        await websocket.send_text(json.dumps(ended))
        return False
    return True


async def _to_browser(
    websocket: WebSocket, context: TerminalContext, inbound: asyncio.Queue[operator_pb2.SessionClientMessage | None]
) -> None:
    while await _forward(websocket, await context.outbound.get(), inbound):
        pass


async def _drain(websocket: WebSocket, context: TerminalContext) -> None:
    while not context.outbound.empty():
        if not await _forward(websocket, context.outbound.get_nowait(), None):
            return


async def _from_browser(websocket: WebSocket, inbound: asyncio.Queue[operator_pb2.SessionClientMessage | None]) -> None:
    seq = 0
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            text = await websocket.receive_text()
            if len(text) > MAX_FRAME:
                continue  # a frame past the bound is dropped, not the session
            try:
                frame: Any = json.loads(text)
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            seq += 1
            if frame.get("t") == "i" and isinstance(frame.get("d"), str):
                body = session_pb2.SessionInput(seq=seq, data=frame["d"].encode("utf-8", "replace"))
            elif frame.get("t") == "r" and isinstance(frame.get("c"), int) and isinstance(frame.get("r"), int):
                size = session_pb2.TerminalSize(cols=_clamp(frame["c"]), rows=_clamp(frame["r"]))
                body = session_pb2.SessionInput(seq=seq, resize=size)
            else:
                seq -= 1
                continue
            await inbound.put(operator_pb2.SessionClientMessage(input=body))
