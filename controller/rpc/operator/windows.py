"""OperatorService calls for maintenance windows (controller/windows) and their tasks."""

from __future__ import annotations

from typing import Any

from fleetops.common.errors import InvalidInput
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.controller.windows.models import TaskType, Window, WindowTask
from fleetops.v1 import operator_pb2


class WindowCalls(OperatorAdapter):
    """Maintenance windows and their tasks (changing one needs what each of its tasks needs)."""

    async def _window_proto(self, window: Window) -> operator_pb2.MaintenanceWindow:
        runs = await self._windows.next_runs(window, 1) if window.enabled else []
        return convert.window_to_proto(window, runs[0] if runs else None)

    async def _require_window_rights(self, peer: Peer, window: str, new: WindowTask | None = None) -> None:
        """window.manage is not enough to change a window: the caller needs what each of its tasks needs.

        Otherwise a window.manage holder could reschedule, enable or rewrite an admin's window and
        have its tasks run when and where they choose. Every decision goes into the call's audit event.
        """
        tasks = await self._windows.tasks(window)
        access = peer.access
        for decision in await self._windows.authority.editor_decisions(
            access.user.name, access.roles, window, tasks, new=new
        ):
            access.decisions.append(decision)
            decision.check()

    @operator_call("window.create")
    async def CreateWindow(self, request: operator_pb2.MaintenanceWindow, peer: Peer) -> tuple[Any, str]:
        window = await self._windows.create(peer.actor, convert.window_from_proto(request))
        return await self._window_proto(window), window.name

    @operator_call("window.update")
    async def UpdateWindow(self, request: operator_pb2.MaintenanceWindow, peer: Peer) -> tuple[Any, str]:
        changed = convert.window_from_proto(request)
        await self._require_window_rights(peer, changed.name)
        window = await self._windows.update(changed)
        return await self._window_proto(window), window.name

    @operator_call("window.list")
    async def ListWindows(self, request: operator_pb2.ListWindowsRequest, peer: Peer) -> tuple[Any, str]:
        windows = [await self._window_proto(w) for w in await self._windows.list()]
        return operator_pb2.ListWindowsResponse(windows=windows), ""

    @operator_call("window.show")
    async def GetWindow(self, request: operator_pb2.GetWindowRequest, peer: Peer) -> tuple[Any, str]:
        window = await self._windows.get(request.name)
        tasks = await self._windows.tasks(request.name)
        detail = operator_pb2.WindowDetail(
            window=await self._window_proto(window), tasks=[convert.window_task_to_proto(t) for t in tasks]
        )
        return detail, request.name

    @operator_call("window.delete")
    async def DeleteWindow(self, request: operator_pb2.GetWindowRequest, peer: Peer) -> tuple[Any, str]:
        await self._require_window_rights(peer, request.name)
        await self._windows.delete(request.name)
        return operator_pb2.DeleteWindowResponse(), request.name

    @operator_call("window.enable")
    async def SetWindowEnabled(self, request: operator_pb2.SetWindowEnabledRequest, peer: Peer) -> tuple[Any, str]:
        await self._require_window_rights(peer, request.name)
        window = await self._windows.set_enabled(request.name, request.enabled)
        return await self._window_proto(window), request.name

    @operator_call("window.next")
    async def NextWindowRuns(self, request: operator_pb2.NextWindowRunsRequest, peer: Peer) -> tuple[Any, str]:
        if request.name:
            window = await self._windows.get(request.name)
        else:
            window = convert.window_from_proto(request.window, unsaved=True)
        runs = await self._windows.next_runs(window, min(request.count or 5, 100))
        return convert.next_runs_to_proto(runs, window.timezone), request.name

    @operator_call("window.task.add")
    async def AddWindowTask(self, request: operator_pb2.WindowTask, peer: Peer) -> tuple[Any, str]:
        task = convert.window_task_from_proto(request)
        task.check()
        if task.runs_document:  # the document exists and takes these parameters, as for a direct run
            info, doc = await self._documents.resolve(task.document)
            if (doc.kind == "runbook") != (task.type == TaskType.AUTOMATION):
                wanted = "automation" if doc.kind == "runbook" else "document"
                raise InvalidInput(f"{info.name} is {'a runbook' if doc.kind == 'runbook' else 'not a runbook'}",
                                   f"use --type {wanted}")  # fmt: skip
            doc.resolve(dict(task.parameters))
        # window.manage must not run what its holder could not run directly: the new task's target is
        # decided as a selector (every host it could ever match), and the window's other tasks too.
        await self._require_window_rights(peer, task.window, new=task)
        task = await self._windows.add_task(task, peer.actor)
        return convert.window_task_to_proto(task), f"{task.window}/{task.id}"

    @operator_call("window.task.remove")
    async def RemoveWindowTask(self, request: operator_pb2.RemoveWindowTaskRequest, peer: Peer) -> tuple[Any, str]:
        await self._require_window_rights(peer, request.window)
        await self._windows.remove_task(request.window, request.task_id)
        return operator_pb2.RemoveWindowTaskResponse(), f"{request.window}/{request.task_id}"

    @operator_call("window.history")
    async def WindowHistory(self, request: operator_pb2.WindowHistoryRequest, peer: Peer) -> tuple[Any, str]:
        executions = await self._windows.history(request.name, min(request.limit or 20, 500))
        return operator_pb2.WindowHistoryResponse(executions=[convert.execution_to_proto(e) for e in executions]), (
            request.name
        )
