"""The console's web application (Starlette): pages rendered on the server, a little JavaScript.

Safe by default:

- **Who.** A request carries the session cookie (``HttpOnly; Secure; SameSite=Strict``) made by
  redeeming a one-time link (:mod:`.store`); without a live session a page answers 401 saying
  how to get a link. Each page's data comes from an operator call (:mod:`.calls`), authorized
  and audited as the gRPC API's, as the session's operator.
- **Cross-site requests.** Every state-changing request is a POST carrying the session's form
  token, from this origin (``Origin``, when the browser sends one, must be the console's). The
  strict cookie is not even sent on a cross-site request.
- **Markup.** Templates escape everything they print (Jinja2 autoescaping): host names, tags,
  inventory, command output and audit details are text, never markup. The Content-Security-Policy
  allows scripts, styles and connections from the console itself only: no inline script runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import grpc
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetops.common.errors import FleetopsError
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.console import review, schedules, terminal
from fleetops.controller.console.calls import CallFailed, Calls, client_address
from fleetops.controller.console.formatting import FILTERS, result_groups, text
from fleetops.controller.console.store import LINK_HINT, SESSION_COOKIE, ConsoleSession, ConsoleStore
from fleetops.controller.throttle import RefusalLog
from fleetops.v1 import operator_pb2

HERE = Path(__file__).parent
LOGIN_ACTION = "console.login"
LOGOUT_ACTION = "console.logout"
#: Refused sign-ins past the first few per source and minute, counted in one event.
REFUSALS_ACTION = "console.refusals"
#: The largest form a page posts (a command's script is the biggest field).
MAX_FORM_BYTES = 256 * 1024
#: No inline script, nothing from elsewhere. Two allowances for the vendored libraries: xterm.js
#: adds <style> elements for its colours and cell sizes (``style-src-elem``: elements only, inline
#: style attributes stay refused), and asciinema-player's terminal emulator is WebAssembly
#: (``'wasm-unsafe-eval'`` compiles WebAssembly; JavaScript eval stays refused).
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "style-src-elem 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make POSTs say "Origin: null"
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=31536000"),
]
STATUS_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}


class SecurityHeaders:
    """Adds the security headers to every response (pages, static files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *[(k, v) for k, v in SECURITY_HEADERS if k not in names],
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Refused(Exception):
    """A request refused before any call: its HTTP status, message and hint."""

    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


class Console:
    """The console's routes over the controller's OperatorServicer and its store of links and sessions."""

    def __init__(self, servicer: Any, links: ConsoleStore, audit: AuditLog, refusals: RefusalLog) -> None:
        self.servicer = servicer
        self.links = links
        self.audit = audit
        #: Refused sign-ins come from anyone: audited, but bounded per source address.
        self.refusals = refusals
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters.update(FILTERS)

    def app(self, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
        """The console's routes, after ``extra_routes`` (the agent downloads: agent_downloads.py)."""
        page = self.page
        routes = [
            *extra_routes,
            Route("/", page(self.home)),
            Route("/login", self.login),
            Route("/logout", page(self.logout), methods=["POST"]),
            Route("/fleet", page(self.fleet)),
            Route("/hosts/{host}", page(self.host)),
            Route("/commands", page(self.commands)),
            Route("/commands", page(self.run_command), methods=["POST"]),
            Route("/commands/{id}", page(self.command)),
            Route("/commands/{id}/results", page(self.command_results)),
            Route("/commands/{id}/output/{host}", page(self.output)),
            *review.routes(self),
            *schedules.routes(self),
            *terminal.routes(self),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        app = Starlette(routes=routes)
        app.add_middleware(SecurityHeaders)
        return app

    # -- plumbing ------------------------------------------------------------------------------
    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(self.templates.get_template(name).render(**values), status_code=status)

    def message(self, status: int, title: str, message: str, hint: str = "", session: Any = None) -> HTMLResponse:
        return self.render("message.html", status, title=title, text=message, hint=hint, session=session)

    def page(
        self, handler: Callable[[Request, ConsoleSession, Calls], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page for a signed-in session: its calls act as the session's operator; a POST must
        carry the session's form token, from this origin."""

        async def endpoint(request: Request) -> Response:
            session = await self.links.session(request.cookies.get(SESSION_COOKIE, ""))
            if session is None:
                return self.message(
                    401, "Signed out", "you are not signed in to the console (or your session ended)", LINK_HINT
                )
            try:
                if request.method == "POST":
                    request.state.form = await _checked_form(request, session)
                calls = Calls(self.servicer, session.certificate_pem, client_address(request))
                return await handler(request, session, calls)
            except Refused as exc:
                return self.message(exc.status, "Refused", exc.message, exc.hint, session)
            except CallFailed as exc:
                status = STATUS_BY_CODE.get(exc.code, 500)
                title = {401: "Signed out", 403: "Not allowed", 404: "Not found"}.get(status, "Error")
                return self.message(status, title, exc.message, exc.hint, session)
            except FleetopsError as exc:
                return self.message(400, "Error", exc.message, exc.hint, session)

        return endpoint

    # -- signing in and out ---------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        token = request.query_params.get("t", "")
        address = client_address(request)
        try:
            session_token, session = await self.links.redeem(token)
        except FleetopsError as exc:
            await self.refusals.refused(
                source=address, actor=f"console:{address}", action=LOGIN_ACTION, target="", error=exc
            )
            return self.message(401, "Link refused", exc.message, exc.hint)
        await self.audit.record(
            actor=session.operator,
            action=LOGIN_ACTION,
            target=session.operator.removeprefix("operator:"),
            details={"address": address, "expires_at": session.expires_at.isoformat()},
        )
        response = RedirectResponse("/fleet", status_code=303)
        max_age = max(0, int((session.expires_at - datetime.now(UTC)).total_seconds()))
        response.set_cookie(
            SESSION_COOKIE, session_token, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict"
        )
        return response

    async def logout(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        await self.links.end(request.cookies.get(SESSION_COOKIE, ""))
        await self.audit.record(
            actor=session.operator,
            action=LOGOUT_ACTION,
            target=session.operator.removeprefix("operator:"),
            details={"address": client_address(request)},
        )
        response = self.message(200, "Signed out", "you are signed out of the console", LINK_HINT)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def home(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        return RedirectResponse("/fleet", status_code=303)

    # -- fleet -----------------------------------------------------------------------------------
    async def fleet(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        selector = request.query_params.get("selector", "").strip()
        deregistered = request.query_params.get("deregistered") == "1"
        target = operator_pb2.Target(selector=selector) if selector else operator_pb2.Target()
        error = None
        hosts: list[Any] = []
        try:
            listed = await calls.unary(
                "ListHosts", operator_pb2.ListHostsRequest(target=target, include_deregistered=deregistered)
            )
            hosts = sorted(listed.hosts, key=lambda h: h.name)
        except CallFailed as exc:
            if exc.code is not grpc.StatusCode.INVALID_ARGUMENT:
                raise
            error = exc  # a bad selector: shown above the (empty) list, the filter kept for fixing
        return self.render(
            "fleet.html", session=session, hosts=hosts, selector=selector, deregistered=deregistered, error=error
        )

    async def host(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        host = await calls.unary("GetHost", operator_pb2.GetHostRequest(host=request.path_params["host"]))
        # Parts the operator may not read (another right) say so; the page is still the host's.
        sessions, patches, commands = await asyncio.gather(
            _unless_refused(calls.unary("ListSessions", operator_pb2.ListSessionsRequest(host=host.id, limit=10))),
            _unless_refused(calls.unary("GetPatchCompliance", operator_pb2.PatchComplianceRequest(host=host.id))),
            _unless_refused(calls.unary("ListCommands", operator_pb2.ListCommandsRequest(host=host.id, limit=10))),
        )
        return self.render(
            "host.html",
            session=session,
            host=host,
            sessions=sessions,
            commands=commands,
            patches=patches.hosts[0] if patches is not None and patches.hosts else None,
            patches_refused=patches is None,
        )

    # -- commands --------------------------------------------------------------------------------
    async def commands(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        listed = await calls.unary("ListCommands", operator_pb2.ListCommandsRequest(limit=50))
        return self.render("commands.html", session=session, commands=listed.commands, form={})

    async def run_command(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        form: Mapping[str, str] = request.state.form
        script = form.get("script", "").replace("\r\n", "\n")
        selector = form.get("selector", "").strip()
        if not selector:
            raise Refused(400, "no target given", "select hosts with a selector, e.g. role=web")
        if not script.strip():
            raise Refused(400, "no command given", "type the command (it runs in the host's shell)")
        try:
            timeout = int(form.get("timeout", "0") or 0)
        except ValueError:
            raise Refused(
                400, f"bad timeout {form.get('timeout', '')[:40]!r}", "give whole seconds, e.g. 600"
            ) from None
        request_ = operator_pb2.RunCommandRequest(
            target=operator_pb2.Target(selector=selector),
            script=script.encode(),
            max_concurrency=form.get("max_concurrency", "").strip(),
            max_errors=form.get("max_errors", "").strip(),
            timeout_seconds=max(0, timeout),
            comment=form.get("comment", "").strip() or "from the console",
        )
        try:
            started = await calls.unary("RunCommand", request_)
        except CallFailed as exc:
            if exc.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                raise
            listed = await calls.unary("ListCommands", operator_pb2.ListCommandsRequest(limit=50))
            return self.render(
                "commands.html", 400, session=session, commands=listed.commands, form=dict(form), error=exc
            )
        return RedirectResponse(f"/commands/{started.command.id}", status_code=303)

    async def _detail(self, calls: Calls, command_id: str) -> operator_pb2.CommandDetail:
        return await calls.unary("GetCommand", operator_pb2.GetCommandRequest(id=command_id, include_output=True))

    async def command(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        detail = await self._detail(calls, request.path_params["id"])
        return self.render(
            "command.html", session=session, detail=detail, groups=result_groups(list(detail.invocations))
        )

    async def command_results(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        """The results part of the command page, which its script fetches again until the command is done."""
        detail = await self._detail(calls, request.path_params["id"])
        return self.render("command_results.html", detail=detail, groups=result_groups(list(detail.invocations)))

    async def output(self, request: Request, session: ConsoleSession, calls: Calls) -> Response:
        command_id, host = request.path_params["id"], request.path_params["host"]
        streams = {}
        for name, stderr in (("stdout", False), ("stderr", True)):
            chunks = []
            request_ = operator_pb2.GetInvocationOutputRequest(command_id=command_id, host=host, stderr=stderr)
            async for part in calls.stream("GetInvocationOutput", request_):
                chunks.append(part.data)
            streams[name] = text(b"".join(chunks))
        return self.render("output.html", session=session, command_id=command_id, host=host, streams=streams)


async def _unless_refused(call: Awaitable[Any]) -> Any:
    """The call's answer, or ``None`` when the operator may not make it."""
    try:
        return await call
    except CallFailed as exc:
        if exc.code is grpc.StatusCode.PERMISSION_DENIED:
            return None
        raise


async def _checked_form(request: Request, session: ConsoleSession) -> dict[str, str]:
    """The posted form, once it is shown to come from this console's own page.

    Raises:
        Refused: another origin, no or a wrong form token, a form too large or not a form.
    """
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise Refused(403, "refused: this request came from another site", "use the console's own pages")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise Refused(415, "refused: not a form", "use the console's own pages")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, f"the form is larger than {MAX_FORM_BYTES // 1024} KiB", "send a shorter command")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "refused: the form could not be read", "use the console's own pages") from None
    form = {k: v[-1] for k, v in fields.items()}
    if not session.csrf_ok(form.get("csrf", "")):
        raise Refused(403, "refused: the form token is missing or wrong", "reload the page and try again")
    return form
