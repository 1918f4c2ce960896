"""Console pages for looking back: sessions (with their recordings replayed in the page) and
the audit log (filters, an event's details, its command's results or its session's replay, and
the chain's verification)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fleetops.common.durations import parse_time
from fleetops.common.errors import FleetopsError
from fleetops.controller.console.calls import Calls
from fleetops.controller.console.formatting import result_groups
from fleetops.controller.console.store import ConsoleSession
from fleetops.controller.rpc import convert
from fleetops.v1 import operator_pb2

if TYPE_CHECKING:
    from fleetops.controller.console.web import Console

#: Events per audit page (older ones: the "older" link).
AUDIT_PAGE = 100
AUDIT_FILTERS = ("since", "until", "actor", "action", "host", "outcome")
OUTCOMES = ("", "ok", "denied", "refused", "error")


def routes(console: Console) -> list[Route]:
    page = console.page
    return [
        Route("/sessions", page(lambda r, s, c: sessions(console, r, s, c))),
        Route("/sessions/{id}", page(lambda r, s, c: session_page(console, r, s, c))),
        Route("/sessions/{id}/transcript.cast", page(lambda r, s, c: transcript(r, c))),
        Route("/audit", page(lambda r, s, c: audit(console, r, s, c))),
        Route("/audit/verify", page(lambda r, s, c: verify(console, r, s, c))),
        Route("/audit/{id:int}", page(lambda r, s, c: audit_event(console, r, s, c))),
    ]


async def sessions(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    host = request.query_params.get("host", "").strip()
    listed = await calls.unary("ListSessions", operator_pb2.ListSessionsRequest(limit=100, host=host))
    return console.render("sessions.html", session=session, sessions=listed.sessions, host=host)


async def session_page(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    info = await calls.unary("GetSession", operator_pb2.GetSessionRequest(id=request.path_params["id"]))
    return console.render("session.html", session=session, info=info)


async def transcript(request: Request, calls: Calls) -> Response:
    """The session's recording (asciicast v2), streamed from the object store as the player reads it."""
    stream = calls.stream("GetSessionTranscript", operator_pb2.GetSessionRequest(id=request.path_params["id"]))
    first = await anext(stream, None)  # authorized (and audited) here: a refusal is a page, not a broken stream

    async def body() -> AsyncIterator[bytes]:
        if first is not None:
            yield first.data
        async for part in stream:
            yield part.data

    return StreamingResponse(body(), media_type="application/x-asciicast")


async def audit(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    q = request.query_params
    filters = {k: q.get(k, "").strip() for k in AUDIT_FILTERS}
    reads = q.get("reads") == "1"
    error: FleetopsError | None = None
    events: list[Any] = []
    try:
        now = datetime.now(UTC)
        before = q.get("before", "").strip()
        query = operator_pb2.ListAuditEventsRequest(
            actor=filters["actor"],
            action=filters["action"],
            host=filters["host"],
            outcome=filters["outcome"],
            limit=AUDIT_PAGE,
            include_reads=reads,
            before_id=int(before) if before.isdigit() else 0,
        )
        if filters["since"]:
            query.since.CopyFrom(convert.timestamp(parse_time(filters["since"], "since", now)))
        if filters["until"]:
            query.until.CopyFrom(convert.timestamp(parse_time(filters["until"], "until", now)))
        events = list((await calls.unary("ListAuditEvents", query)).events)
    except FleetopsError as exc:  # a bad time: said above the (empty) list, the filters kept for fixing
        error = exc
    events.reverse()  # newest first
    older = ""
    if len(events) == AUDIT_PAGE:
        params = {k: v for k, v in filters.items() if v} | ({"reads": "1"} if reads else {})
        older = urlencode({**params, "before": str(events[-1].id)})
    return console.render(
        "audit.html",
        session=session,
        events=events,
        filters=filters,
        reads=reads,
        outcomes=OUTCOMES,
        error=error,
        older=older,
    )


async def audit_event(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    detail = await calls.unary("GetAuditEvent", operator_pb2.GetAuditEventRequest(id=request.path_params["id"]))
    try:
        details = json.dumps(json.loads(detail.event.details_json or "{}"), indent=2, sort_keys=True)
    except ValueError:
        details = detail.event.details_json
    command = detail.command if detail.HasField("command") else None
    return console.render(
        "audit_event.html",
        session=session,
        event=detail.event,
        details=details,
        command=command,
        groups=result_groups(list(command.invocations)) if command else [],
        info=detail.session if detail.HasField("session") else None,
    )


async def verify(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    result = await calls.unary("VerifyAudit", operator_pb2.VerifyAuditRequest())
    return console.render("audit_verify.html", session=session, result=result)
