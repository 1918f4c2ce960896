"""OperatorService calls for operators and roles (controller/users, controller/authz)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fleetops.common import pki
from fleetops.common.errors import Conflict
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.controller.users.models import DEFAULT_TOKEN_TTL
from fleetops.v1 import enrollment_pb2, operator_pb2


class UserCalls(OperatorAdapter):
    """Roles and operators: role documents, users, login tokens, certificate renewal."""

    # -- roles ----------------------------------------------------------------------------------
    @operator_call("role.create")
    async def CreateRole(self, request: operator_pb2.Role, peer: Peer) -> tuple[Any, str]:
        role = await self._roles.put(peer.actor, convert.role_document(request), create=True)
        return convert.role_to_proto(role), role.name

    @operator_call("role.update")
    async def UpdateRole(self, request: operator_pb2.Role, peer: Peer) -> tuple[Any, str]:
        role = await self._roles.put(peer.actor, convert.role_document(request), create=False)
        return convert.role_to_proto(role), role.name

    @operator_call("role.list")
    async def ListRoles(self, request: operator_pb2.ListRolesRequest, peer: Peer) -> tuple[Any, str]:
        return operator_pb2.ListRolesResponse(roles=[convert.role_to_proto(r) for r in await self._roles.list()]), ""

    @operator_call("role.show")
    async def GetRole(self, request: operator_pb2.GetRoleRequest, peer: Peer) -> tuple[Any, str]:
        return convert.role_to_proto(await self._roles.get(request.name)), request.name

    @operator_call("role.delete")
    async def DeleteRole(self, request: operator_pb2.GetRoleRequest, peer: Peer) -> tuple[Any, str]:
        await self._roles.delete(request.name)
        return operator_pb2.DeleteRoleResponse(), request.name

    # -- operators ----------------------------------------------------------------------------
    def _login_command(self, token: str, peer: Peer) -> str:
        return f"opsctl login --controller {self._controller_address(peer)} --token {token}"

    def _controller_address(self, peer: Peer) -> str:
        return self.public_address or "CONTROLLER:7443"

    @operator_call("user.create")
    async def CreateUser(self, request: operator_pb2.CreateUserRequest, peer: Peer) -> tuple[Any, str]:
        ttl = timedelta(seconds=request.token_ttl_seconds) if request.token_ttl_seconds else DEFAULT_TOKEN_TTL
        await self._roles.check_names(request.roles)
        user, token = await self._users.create(peer.actor, request.name, list(request.roles), ttl)
        response = operator_pb2.CreateUserResponse(
            user=convert.user_to_proto(user),
            token=token.token,
            token_expires_at=convert.timestamp(token.expires_at),
            login_command=self._login_command(token.token, peer),
        )
        return response, user.name

    @operator_call("user.token")
    async def IssueLoginToken(self, request: operator_pb2.IssueLoginTokenRequest, peer: Peer) -> tuple[Any, str]:
        ttl = timedelta(seconds=request.token_ttl_seconds) if request.token_ttl_seconds else DEFAULT_TOKEN_TTL
        token = await self._users.issue_token(request.name, ttl)
        user = await self._users.get(request.name)
        response = operator_pb2.CreateUserResponse(
            user=convert.user_to_proto(user),
            token=token.token,
            token_expires_at=convert.timestamp(token.expires_at),
            login_command=self._login_command(token.token, peer),
        )
        return response, user.name

    @operator_call("user.list")
    async def ListUsers(self, request: operator_pb2.ListUsersRequest, peer: Peer) -> tuple[Any, str]:
        return operator_pb2.ListUsersResponse(users=[convert.user_to_proto(u) for u in await self._users.list()]), ""

    @operator_call("user.update")
    async def UpdateUser(self, request: operator_pb2.UpdateUserRequest, peer: Peer) -> tuple[Any, str]:
        if request.set_roles:
            await self._roles.check_names(request.roles)
        user = await self._users.update(
            request.name,
            roles=list(request.roles) if request.set_roles else None,
            disabled=request.disabled if request.set_disabled else None,
        )
        return convert.user_to_proto(user), user.name

    @operator_call("user.delete")
    async def DeleteUser(self, request: operator_pb2.DeleteUserRequest, peer: Peer) -> tuple[Any, str]:
        if request.name == peer.identity.name:
            raise Conflict("you cannot delete yourself", "ask another admin")
        await self._users.delete(request.name)
        return operator_pb2.DeleteUserResponse(), request.name

    @operator_call("user.renew")
    async def RenewOperatorCertificate(
        self, request: operator_pb2.RenewOperatorCertificateRequest, peer: Peer
    ) -> tuple[Any, str]:
        user = await self._users.get(peer.identity.name)
        certificate = await self._users.renew(user, bytes(request.csr_pem))
        response = enrollment_pb2.OperatorCertificate(
            operator=user.name, certificate_pem=pki.cert_pem(certificate), ca_pem=pki.cert_pem(self._users.ca)
        )
        return response, user.name
