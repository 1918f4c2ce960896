"""OperatorService calls for documents (controller/documents): versions, the default, deletion."""

from __future__ import annotations

from typing import Any

from fleetops.controller.documents.models import DocumentInfo
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


def document_to_proto(info: DocumentInfo) -> operator_pb2.DocumentVersion:
    return operator_pb2.DocumentVersion(
        name=info.name,
        version=info.version,
        content=info.content,
        kind=info.kind,
        description=info.description,
        builtin=info.builtin,
        default_version=info.default_version,
        latest_version=info.latest_version,
        created_at=convert.timestamp(info.created_at),
        created_by=info.created_by,
        sha256=info.sha256,
    )


class DocumentCalls(OperatorAdapter):
    """Documents: create, add versions, choose the default, list, show, delete."""

    @operator_call("document.create")
    async def CreateDocument(self, request: operator_pb2.DocumentRequest, peer: Peer) -> tuple[Any, str]:
        info = await self._documents.create(peer.actor, request.name, request.content)
        peer.access.details["version"] = info.version
        peer.access.details["sha256"] = info.sha256
        return document_to_proto(info), info.reference

    @operator_call("document.update")
    async def UpdateDocument(self, request: operator_pb2.DocumentRequest, peer: Peer) -> tuple[Any, str]:
        info = await self._documents.update(
            peer.actor, request.name, request.content, make_default=request.make_default
        )
        peer.access.details.update(version=info.version, sha256=info.sha256, default_version=info.default_version)
        return document_to_proto(info), info.reference

    @operator_call("document.list")
    async def ListDocuments(self, request: operator_pb2.ListDocumentsRequest, peer: Peer) -> tuple[Any, str]:
        docs = await self._documents.list()
        return operator_pb2.ListDocumentsResponse(documents=[document_to_proto(d) for d in docs]), ""

    @operator_call("document.show")
    async def GetDocument(self, request: operator_pb2.GetDocumentRequest, peer: Peer) -> tuple[Any, str]:
        info = await self._documents.get(request.name, request.version or None)
        return document_to_proto(info), info.reference

    @operator_call("document.versions")
    async def ListDocumentVersions(self, request: operator_pb2.GetDocumentRequest, peer: Peer) -> tuple[Any, str]:
        versions = await self._documents.versions(request.name)
        return operator_pb2.ListDocumentVersionsResponse(
            versions=[document_to_proto(v) for v in versions]
        ), request.name

    @operator_call("document.default")
    async def SetDefaultDocumentVersion(self, request: operator_pb2.GetDocumentRequest, peer: Peer) -> tuple[Any, str]:
        info = await self._documents.set_default(request.name, request.version)
        return document_to_proto(info), info.reference

    @operator_call("document.delete")
    async def DeleteDocument(self, request: operator_pb2.GetDocumentRequest, peer: Peer) -> tuple[Any, str]:
        count = await self._documents.delete(request.name)
        peer.access.details["versions"] = count
        return operator_pb2.DeleteDocumentResponse(versions=count), request.name
