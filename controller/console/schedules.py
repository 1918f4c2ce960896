"""Console pages for what runs on a schedule: patch compliance (by host and baseline) and
maintenance windows (their next runs and history)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetops.controller.console.calls import Calls
from fleetops.controller.console.store import ConsoleSession
from fleetops.v1 import operator_pb2

if TYPE_CHECKING:
    from fleetops.controller.console.web import Console


def routes(console: Console) -> list[Route]:
    page = console.page
    return [
        Route("/patching", page(lambda r, s, c: patching(console, r, s, c))),
        Route("/windows", page(lambda r, s, c: windows(console, r, s, c))),
        Route("/windows/{name}", page(lambda r, s, c: window(console, r, s, c))),
    ]


async def patching(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    selector = request.query_params.get("selector", "").strip()
    target = operator_pb2.Target(selector=selector) if selector else operator_pb2.Target()
    compliance = await calls.unary("GetPatchCompliance", operator_pb2.PatchComplianceRequest(target=target))
    baselines = await calls.unary("ListPatchBaselines", operator_pb2.ListPatchBaselinesRequest())
    groups = await calls.unary("ListPatchGroups", operator_pb2.ListPatchGroupsRequest())
    by_baseline: dict[str, dict[str, int]] = {}
    for host in compliance.hosts:
        counts = by_baseline.setdefault(host.baseline or "(none)", {})
        counts[host.status] = counts.get(host.status, 0) + 1
    return console.render(
        "patching.html",
        session=session,
        selector=selector,
        compliance=compliance,
        hosts=sorted(compliance.hosts, key=lambda h: h.host_name),
        by_baseline=sorted(by_baseline.items()),
        baselines=baselines.baselines,
        groups=groups.groups,
    )


async def windows(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    listed = await calls.unary("ListWindows", operator_pb2.ListWindowsRequest())
    return console.render("windows.html", session=session, windows=sorted(listed.windows, key=lambda w: w.name))


async def window(console: Console, request: Request, session: ConsoleSession, calls: Calls) -> Response:
    name = request.path_params["name"]
    detail = await calls.unary("GetWindow", operator_pb2.GetWindowRequest(name=name))
    runs = await calls.unary("NextWindowRuns", operator_pb2.NextWindowRunsRequest(name=name, count=5))
    history = await calls.unary("WindowHistory", operator_pb2.WindowHistoryRequest(name=name, limit=20))
    return console.render(
        "window.html",
        session=session,
        window=detail.window,
        tasks=sorted(detail.tasks, key=lambda t: (t.priority, t.id)),
        next_runs=list(zip(runs.starts, runs.local_starts, strict=False)),
        executions=history.executions,
    )
