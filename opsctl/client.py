"""The operator client library: typed calls to OperatorService, fleetops errors on failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from fleetops.common import limits
from fleetops.common.errors import FleetopsError
from fleetops.common.profile import Profile, load_profile
from fleetops.common.rpc_client import error_from_rpc
from fleetops.v1 import enrollment_pb2, events_pb2, operator_pb2, operator_pb2_grpc

DEFAULT_TIMEOUT = 30.0

# Message sizes from the one table (common/limits.py): opsctl takes whatever the controller may send
# an operator, and never sends a request the controller's listener would refuse.
MESSAGE_SIZE_OPTIONS = limits.channel_options(
    receive=limits.OPERATOR_RESPONSE_BYTES, send=limits.CONTROLLER_RECEIVE_BYTES
)

# Options of the long-lived channel of an interactive session (grpc.aio): keepalive pings notice a
# dead controller while the terminal is quiet, and a short reconnect backoff lets a resume attempt
# reach a controller that is back (grpc's default backoff grows to 2 minutes, past the resume window).
SESSION_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    *MESSAGE_SIZE_OPTIONS,
)


def channel_credentials(profile: Profile) -> grpc.ChannelCredentials:
    """The operator's mTLS credentials: the profile's key and certificate, verified against its CA."""
    return grpc.ssl_channel_credentials(
        root_certificates=profile.ca_pem, private_key=profile.key_pem, certificate_chain=profile.cert_pem
    )


def aio_channel(profile: Profile, options: tuple[tuple[str, Any], ...] = SESSION_CHANNEL_OPTIONS) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to the profile's controller with the same credentials as :class:`OperatorClient`.

    Create it inside the event loop that uses it; close it with ``await channel.close()``.
    """
    return grpc.aio.secure_channel(profile.controller, channel_credentials(profile), options=options)


class OperatorClient:
    """A connection to one controller as one operator.

    Every method raises a :class:`fleetops.common.errors.FleetopsError` subclass on failure:
    ``InvalidInput`` (bad selector, bad tag), ``NotFound``, ``Conflict``, ``Unauthenticated``
    (certificate expired or revoked), ``PermissionDenied``, ``Unavailable`` (controller down).
    """

    def __init__(self, profile: Profile, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.profile = profile
        self._timeout = timeout
        self._channel = grpc.secure_channel(
            profile.controller, channel_credentials(profile), options=MESSAGE_SIZE_OPTIONS
        )
        self._stub = operator_pb2_grpc.OperatorServiceStub(self._channel)

    @classmethod
    def from_profile(cls, name_or_path: str | None = None) -> OperatorClient:
        return cls(load_profile(name_or_path))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> OperatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {self.profile.controller}") from exc

    # -- identity ---------------------------------------------------------------------------
    def whoami(self) -> operator_pb2.WhoAmIResponse:
        return self._call("WhoAmI", operator_pb2.WhoAmIRequest())

    def create_console_link(self) -> operator_pb2.ConsoleLink:
        return self._call("CreateConsoleLink", operator_pb2.CreateConsoleLinkRequest())

    # -- hosts ------------------------------------------------------------------------------
    def list_hosts(
        self,
        *,
        selector: str = "",
        hosts: list[str] | None = None,
        all_hosts: bool = False,
        include_deregistered: bool = False,
    ) -> list[operator_pb2.Host]:
        target = operator_pb2.Target(selector=selector, hosts=hosts or [], all=all_hosts)
        response = self._call(
            "ListHosts", operator_pb2.ListHostsRequest(target=target, include_deregistered=include_deregistered)
        )
        return list(response.hosts)

    def get_host(self, host: str) -> operator_pb2.Host:
        return self._call("GetHost", operator_pb2.GetHostRequest(host=host))

    def tag_host(self, host: str, set_tags: dict[str, str], remove: list[str]) -> operator_pb2.Host:
        return self._call("TagHost", operator_pb2.TagHostRequest(host=host, set=set_tags, remove=remove))

    def tag_hosts(
        self,
        set_tags: dict[str, str],
        remove: list[str],
        *,
        selector: str = "",
        hosts: list[str] | None = None,
        all_hosts: bool = False,
        dry_run: bool = False,
    ) -> operator_pb2.TagHostsResponse:
        """Tag every host of a target at once (all or nothing); *dry_run*: say what would change."""
        target = operator_pb2.Target(selector=selector, hosts=hosts or [], all=all_hosts)
        request = operator_pb2.TagHostsRequest(target=target, set=set_tags, remove=remove, dry_run=dry_run)
        return self._call("TagHosts", request)

    def deregister_host(self, host: str) -> operator_pb2.Host:
        return self._call("DeregisterHost", operator_pb2.DeregisterHostRequest(host=host))

    # -- activations ------------------------------------------------------------------------
    def create_activation(
        self,
        *,
        default_tags: dict[str, str],
        limit: int,
        expires_in_seconds: int,
        description: str = "",
        allowed_host_tags: list[str] | None = None,
    ) -> operator_pb2.CreateActivationResponse:
        return self._call(
            "CreateActivation",
            operator_pb2.CreateActivationRequest(
                default_tags=default_tags,
                registration_limit=limit,
                expires_in_seconds=expires_in_seconds,
                description=description,
                allowed_host_tags=allowed_host_tags or [],
            ),
        )

    def list_activations(self) -> list[operator_pb2.Activation]:
        return list(self._call("ListActivations", operator_pb2.ListActivationsRequest()).activations)

    def delete_activation(self, activation_id: str) -> None:
        self._call("DeleteActivation", operator_pb2.DeleteActivationRequest(id=activation_id))

    # -- run command -------------------------------------------------------------------------
    def run_command(self, request: operator_pb2.RunCommandRequest) -> operator_pb2.RunCommandResponse:
        return self._call("RunCommand", request)

    def list_commands(self, limit: int = 50, host: str = "") -> list[operator_pb2.Command]:
        return list(self._call("ListCommands", operator_pb2.ListCommandsRequest(limit=limit, host=host)).commands)

    def get_command(self, command_id: str, include_output: bool = True) -> operator_pb2.CommandDetail:
        return self._call("GetCommand", operator_pb2.GetCommandRequest(id=command_id, include_output=include_output))

    def cancel_command(self, command_id: str) -> operator_pb2.Command:
        return self._call("CancelCommand", operator_pb2.GetCommandRequest(id=command_id))

    def watch_command(self, command_id: str, include_output: bool = False) -> Iterator[operator_pb2.CommandDetail]:
        """Progress of a command until it ends (no timeout: a fan-out may run for hours).

        Each message carries the invocations that changed since the previous one; with
        *include_output*, finished ones come with their output tails.
        """
        try:
            request = operator_pb2.GetCommandRequest(id=command_id, include_output=include_output)
            yield from self._stub.WatchCommand(request)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {self.profile.controller}") from exc

    def invocation_output(
        self, command_id: str, host: str, stderr: bool = False, follow: bool = False
    ) -> Iterator[operator_pb2.OutputData]:
        """One invocation's stdout (or *stderr*) in chunks, each with its ``offset`` in the stream.

        A final invocation: its whole stored output. A running one: what the controller holds so far,
        and with *follow* every further chunk as it arrives until the invocation ends. Each chunk's
        ``offset`` is where its data starts in the stream; ``skipped`` is the total of earlier bytes
        this reader did not get (0 unless the controller no longer held them: a gap shows as an
        offset past the previous chunk's end). No timeout: output may be large and a followed
        command may run for hours.
        """
        request = operator_pb2.GetInvocationOutputRequest(
            command_id=command_id, host=host, stderr=stderr, follow=follow
        )
        try:
            yield from self._stub.GetInvocationOutput(request)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {self.profile.controller}") from exc

    def watch_output(self, command_id: str, hosts: list[str] | None = None) -> Iterator[operator_pb2.OutputEvent]:
        """A command's output as it arrives from each host (names or ids; none: every host the caller
        may see), and each host's final invocation as it ends, until the command has ended (no timeout).

        Per host and stream, ``LiveOutput.offset`` is where the data starts and ``skipped`` the total
        of earlier bytes this watcher did not get (a late watcher starts at the tail the controller
        holds; a slow one skips ahead rather than hold anything up). A host's output comes before
        its ``finished`` event, which carries no tails (they came as output).
        """
        request = operator_pb2.WatchOutputRequest(command_id=command_id, hosts=hosts or [])
        try:
            yield from self._stub.WatchOutput(request)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {self.profile.controller}") from exc

    # -- interactive sessions ----------------------------------------------------------------
    def list_sessions(
        self, *, active_only: bool = False, host: str = "", limit: int = 50
    ) -> list[operator_pb2.SessionInfo]:
        request = operator_pb2.ListSessionsRequest(active_only=active_only, host=host, limit=limit)
        return list(self._call("ListSessions", request).sessions)

    def get_session(self, session_id: str) -> operator_pb2.SessionInfo:
        return self._call("GetSession", operator_pb2.GetSessionRequest(id=session_id))

    def kill_session(self, session_id: str) -> operator_pb2.SessionInfo:
        return self._call("KillSession", operator_pb2.GetSessionRequest(id=session_id))

    def session_transcript(self, session_id: str) -> Iterator[bytes]:
        """The session's asciicast v2 transcript in chunks (no timeout: a transcript may be large)."""
        try:
            for chunk in self._stub.GetSessionTranscript(operator_pb2.GetSessionRequest(id=session_id)):
                yield chunk.data
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {self.profile.controller}") from exc

    # -- patch management --------------------------------------------------------------------
    def list_agent_releases(self) -> operator_pb2.ListAgentReleasesResponse:
        """The agent releases the controller holds, newest first, and its release key id."""
        return self._call("ListAgentReleases", operator_pb2.ListAgentReleasesRequest())

    def update_agents(self, request: operator_pb2.UpdateAgentsRequest) -> operator_pb2.RunCommandResponse:
        """Start an agent update on the targets: a command (agent task ``agent.update``) to follow like any other."""
        return self._call("UpdateAgents", request)

    def scan_patches(self, request: operator_pb2.PatchOperationRequest) -> operator_pb2.RunCommandResponse:
        """Start a scan of the targets: a command (agent task ``patch.scan``) to follow like any other."""
        return self._call("ScanPatches", request)

    def install_patches(self, request: operator_pb2.PatchOperationRequest) -> operator_pb2.RunCommandResponse:
        """Start an install on the targets: a command (agent task ``patch.install``) to follow like any other."""
        return self._call("InstallPatches", request)

    def patch_compliance(
        self, *, selector: str = "", hosts: list[str] | None = None, all_hosts: bool = False, host: str = ""
    ) -> operator_pb2.PatchComplianceResponse:
        """The fleet's compliance (an empty target: every host), or one *host* with its findings and history."""
        target = operator_pb2.Target(selector=selector, hosts=hosts or [], all=all_hosts)
        return self._call("GetPatchCompliance", operator_pb2.PatchComplianceRequest(target=target, host=host))

    def create_patch_baseline(self, name: str, document_json: str) -> operator_pb2.PatchBaseline:
        return self._call("CreatePatchBaseline", operator_pb2.PatchBaseline(name=name, document_json=document_json))

    def update_patch_baseline(self, name: str, document_json: str) -> operator_pb2.PatchBaseline:
        return self._call("UpdatePatchBaseline", operator_pb2.PatchBaseline(name=name, document_json=document_json))

    def list_patch_baselines(self) -> list[operator_pb2.PatchBaseline]:
        return list(self._call("ListPatchBaselines", operator_pb2.ListPatchBaselinesRequest()).baselines)

    def get_patch_baseline(self, name: str) -> operator_pb2.PatchBaseline:
        return self._call("GetPatchBaseline", operator_pb2.GetPatchBaselineRequest(name=name))

    def delete_patch_baseline(self, name: str) -> None:
        self._call("DeletePatchBaseline", operator_pb2.GetPatchBaselineRequest(name=name))

    def assign_patch_baseline(
        self, *, group: str, selector: str, baseline: str, priority: int = 0
    ) -> operator_pb2.PatchGroup:
        """Register patch group *group* (hosts matching *selector*) with *baseline*; priority 0 means 100."""
        request = operator_pb2.PatchGroup(name=group, selector=selector, baseline=baseline, priority=priority)
        return self._call("AssignPatchBaseline", request)

    def list_patch_groups(self) -> list[operator_pb2.PatchGroup]:
        return list(self._call("ListPatchGroups", operator_pb2.ListPatchGroupsRequest()).groups)

    def delete_patch_group(self, name: str) -> None:
        self._call("DeletePatchGroup", operator_pb2.DeletePatchGroupRequest(name=name))

    # -- maintenance windows ------------------------------------------------------------------
    def create_window(self, window: operator_pb2.MaintenanceWindow) -> operator_pb2.MaintenanceWindow:
        return self._call("CreateWindow", window)

    def update_window(self, window: operator_pb2.MaintenanceWindow) -> operator_pb2.MaintenanceWindow:
        """Replace every field of the named window with *window*'s (send the whole window, not a patch)."""
        return self._call("UpdateWindow", window)

    def list_windows(self) -> list[operator_pb2.MaintenanceWindow]:
        return list(self._call("ListWindows", operator_pb2.ListWindowsRequest()).windows)

    def get_window(self, name: str) -> operator_pb2.WindowDetail:
        """The window with its tasks."""
        return self._call("GetWindow", operator_pb2.GetWindowRequest(name=name))

    def delete_window(self, name: str) -> None:
        self._call("DeleteWindow", operator_pb2.GetWindowRequest(name=name))

    def set_window_enabled(self, name: str, enabled: bool) -> operator_pb2.MaintenanceWindow:
        return self._call("SetWindowEnabled", operator_pb2.SetWindowEnabledRequest(name=name, enabled=enabled))

    def next_window_runs(
        self, *, name: str = "", window: operator_pb2.MaintenanceWindow | None = None, count: int = 0
    ) -> operator_pb2.NextWindowRunsResponse:
        """The next starts of saved window *name*, or of an unsaved *window* (its schedule); count 0 means 5."""
        request = operator_pb2.NextWindowRunsRequest(name=name, count=count)
        if window is not None:
            request.window.CopyFrom(window)
        return self._call("NextWindowRuns", request)

    def add_window_task(self, task: operator_pb2.WindowTask) -> operator_pb2.WindowTask:
        return self._call("AddWindowTask", task)

    def remove_window_task(self, window: str, task_id: str) -> None:
        self._call("RemoveWindowTask", operator_pb2.RemoveWindowTaskRequest(window=window, task_id=task_id))

    def window_history(self, name: str, limit: int = 0) -> list[operator_pb2.WindowExecution]:
        """The window's executions, newest first, each with its task executions; limit 0 means 20."""
        request = operator_pb2.WindowHistoryRequest(name=name, limit=limit)
        return list(self._call("WindowHistory", request).executions)

    # -- operators and roles --------------------------------------------------------------------
    def create_user(self, name: str, roles: list[str], token_ttl_seconds: int = 0) -> operator_pb2.CreateUserResponse:
        """Create operator *name*; the response carries the one-time login token (shown once). TTL 0 means 24 h."""
        request = operator_pb2.CreateUserRequest(name=name, roles=roles, token_ttl_seconds=token_ttl_seconds)
        return self._call("CreateUser", request)

    def list_users(self) -> list[operator_pb2.User]:
        return list(self._call("ListUsers", operator_pb2.ListUsersRequest()).users)

    def update_user(
        self, name: str, *, roles: list[str] | None = None, disabled: bool | None = None
    ) -> operator_pb2.User:
        """Replace the roles of *name* (when *roles* is given) and/or disable or enable it (when *disabled* is)."""
        request = operator_pb2.UpdateUserRequest(
            name=name,
            roles=roles or [],
            set_roles=roles is not None,
            disabled=bool(disabled),
            set_disabled=disabled is not None,
        )
        return self._call("UpdateUser", request)

    def delete_user(self, name: str) -> None:
        self._call("DeleteUser", operator_pb2.DeleteUserRequest(name=name))

    def issue_login_token(self, name: str, token_ttl_seconds: int = 0) -> operator_pb2.CreateUserResponse:
        """A new one-time login token for *name* (replacing an unused one); TTL 0 means 24 h."""
        request = operator_pb2.IssueLoginTokenRequest(name=name, token_ttl_seconds=token_ttl_seconds)
        return self._call("IssueLoginToken", request)

    def create_role(self, name: str, document_json: str) -> operator_pb2.Role:
        return self._call("CreateRole", operator_pb2.Role(name=name, document_json=document_json))

    def update_role(self, name: str, document_json: str) -> operator_pb2.Role:
        return self._call("UpdateRole", operator_pb2.Role(name=name, document_json=document_json))

    def list_roles(self) -> list[operator_pb2.Role]:
        return list(self._call("ListRoles", operator_pb2.ListRolesRequest()).roles)

    def get_role(self, name: str) -> operator_pb2.Role:
        return self._call("GetRole", operator_pb2.GetRoleRequest(name=name))

    def delete_role(self, name: str) -> None:
        self._call("DeleteRole", operator_pb2.GetRoleRequest(name=name))

    # -- automation --------------------------------------------------------------------------
    def start_automation(
        self, runbook: str, parameters: dict[str, str], comment: str = ""
    ) -> operator_pb2.AutomationExecution:
        request = operator_pb2.StartAutomationRequest(runbook=runbook, parameters=parameters, comment=comment)
        return self._call("StartAutomation", request)

    def list_automations(self, limit: int = 50) -> list[operator_pb2.AutomationExecution]:
        return list(self._call("ListAutomations", operator_pb2.ListAutomationsRequest(limit=limit)).executions)

    def get_automation(self, execution_id: str) -> operator_pb2.AutomationExecution:
        return self._call("GetAutomation", operator_pb2.GetAutomationRequest(id=execution_id))

    def cancel_automation(self, execution_id: str) -> operator_pb2.AutomationExecution:
        return self._call("CancelAutomation", operator_pb2.GetAutomationRequest(id=execution_id))

    def decide_automation_approval(
        self, execution_id: str, approve: bool, comment: str
    ) -> operator_pb2.AutomationExecution:
        request = operator_pb2.AutomationApprovalRequest(id=execution_id, approve=approve, comment=comment)
        return self._call("DecideAutomationApproval", request)

    def watch_automation(self, execution_id: str) -> Iterator[operator_pb2.AutomationExecution]:
        """The execution at each change until it ends (no timeout: a runbook may wait for hours)."""
        try:
            yield from self._stub.WatchAutomation(operator_pb2.GetAutomationRequest(id=execution_id))
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {self.profile.controller}") from exc

    # -- documents ---------------------------------------------------------------------------
    def create_document(self, name: str, content: str) -> operator_pb2.DocumentVersion:
        return self._call("CreateDocument", operator_pb2.DocumentRequest(name=name, content=content))

    def update_document(self, name: str, content: str, make_default: bool) -> operator_pb2.DocumentVersion:
        request = operator_pb2.DocumentRequest(name=name, content=content, make_default=make_default)
        return self._call("UpdateDocument", request)

    def list_documents(self) -> list[operator_pb2.DocumentVersion]:
        return list(self._call("ListDocuments", operator_pb2.ListDocumentsRequest()).documents)

    def get_document(self, name: str, version: int = 0) -> operator_pb2.DocumentVersion:
        return self._call("GetDocument", operator_pb2.GetDocumentRequest(name=name, version=version))

    def document_versions(self, name: str) -> list[operator_pb2.DocumentVersion]:
        return list(self._call("ListDocumentVersions", operator_pb2.GetDocumentRequest(name=name)).versions)

    def set_default_document_version(self, name: str, version: int) -> operator_pb2.DocumentVersion:
        request = operator_pb2.GetDocumentRequest(name=name, version=version)
        return self._call("SetDefaultDocumentVersion", request)

    def delete_document(self, name: str) -> int:
        return int(self._call("DeleteDocument", operator_pb2.GetDocumentRequest(name=name)).versions)

    # -- associations ------------------------------------------------------------------------
    def create_association(self, association: operator_pb2.Association) -> operator_pb2.Association:
        """Create *association* (its id is assigned); it applies at once, then on its schedule."""
        return self._call("CreateAssociation", association)

    def list_associations(self) -> list[operator_pb2.Association]:
        return list(self._call("ListAssociations", operator_pb2.ListAssociationsRequest()).associations)

    def get_association(self, key: str) -> operator_pb2.AssociationDetail:
        """The association (id or name) with each host's compliance."""
        return self._call("GetAssociation", operator_pb2.GetAssociationRequest(id=key))

    def association_history(self, key: str, limit: int = 0) -> list[operator_pb2.AssociationRun]:
        """Its latest runs (applications and checks), newest first; limit 0 means 50."""
        return list(self._call("AssociationHistory", operator_pb2.GetAssociationRequest(id=key, limit=limit)).runs)

    def apply_association(self, key: str) -> operator_pb2.AssociationRun:
        """Apply it now on every host its target matches; the (first) run made."""
        return self._call("ApplyAssociation", operator_pb2.GetAssociationRequest(id=key))

    def delete_association(self, key: str) -> None:
        self._call("DeleteAssociation", operator_pb2.GetAssociationRequest(id=key))

    def apply_configuration(
        self, objects: list[operator_pb2.ConfigObject], *, dry_run: bool, prune: bool, source: str
    ) -> operator_pb2.ApplyConfigurationResponse:
        request = operator_pb2.ApplyConfigurationRequest(objects=objects, dry_run=dry_run, prune=prune, source=source)
        return self._call("ApplyConfiguration", request)

    def export_configuration(self, kinds: list[str]) -> list[operator_pb2.ConfigObject]:
        response = self._call("ExportConfiguration", operator_pb2.ExportConfigurationRequest(kinds=kinds))
        return list(response.objects)

    def renew_operator_certificate(self, csr_pem: bytes) -> enrollment_pb2.OperatorCertificate:
        """A fresh certificate for the calling operator (authenticated by this client's current one)."""
        return self._call("RenewOperatorCertificate", operator_pb2.RenewOperatorCertificateRequest(csr_pem=csr_pem))

    def issue_ssh_certificate(self, public_key: str) -> operator_pb2.IssueSshCertificateResponse:
        """An SSH certificate for ``public_key`` (an OpenSSH line), for stock ssh through opsctl proxy."""
        return self._call("IssueSshCertificate", operator_pb2.IssueSshCertificateRequest(public_key=public_key))

    # -- audit ------------------------------------------------------------------------------
    def list_audit_events(self, **filters: Any) -> list[operator_pb2.AuditEvent]:
        """Filters: since, until (aware datetimes), actor, action, outcome, host, before_id, limit,
        include_reads (reads are left out unless refused or asked for by action)."""
        request = operator_pb2.ListAuditEventsRequest(
            include_reads=filters.get("include_reads", False),
            actor=filters.get("actor", ""),
            action=filters.get("action", ""),
            outcome=filters.get("outcome", ""),
            host=filters.get("host", ""),
            before_id=filters.get("before_id", 0),
            limit=filters.get("limit", 100),
        )
        if filters.get("since") is not None:
            request.since.FromDatetime(filters["since"])
        if filters.get("until") is not None:
            request.until.FromDatetime(filters["until"])
        return list(self._call("ListAuditEvents", request).events)

    def get_audit_event(self, event_id: int) -> operator_pb2.AuditEventDetail:
        return self._call("GetAuditEvent", operator_pb2.GetAuditEventRequest(id=event_id))

    def export_audit(self) -> operator_pb2.ExportAuditResponse:
        return self._call("ExportAudit", operator_pb2.ExportAuditRequest())

    def verify_audit(self) -> operator_pb2.VerifyAuditResponse:
        return self._call("VerifyAudit", operator_pb2.VerifyAuditRequest())

    # -- events and subscriptions (docs/events.md) -------------------------------------------
    def watch_events(
        self, types: list[str], target: str, after_position: int = 0
    ) -> Iterator[events_pb2.WatchEventsResponse]:
        """The live event stream (no timeout): a ``ready`` message, then one message per event."""
        try:
            request = events_pb2.WatchEventsRequest(types=types, target=target, after_position=after_position)
            yield from self._stub.WatchEvents(request)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller at {self.profile.controller}") from exc

    def list_event_types(self) -> list[events_pb2.EventType]:
        return list(self._call("ListEventTypes", events_pb2.ListEventTypesRequest()).types)

    def create_subscription(self, request: events_pb2.CreateSubscriptionRequest) -> events_pb2.Subscription:
        return self._call("CreateSubscription", request)

    def list_subscriptions(self) -> list[events_pb2.Subscription]:
        return list(self._call("ListSubscriptions", events_pb2.ListSubscriptionsRequest()).subscriptions)

    def get_subscription(
        self, name: str, limit: int = 20, status: str = "", show_secret: bool = False
    ) -> events_pb2.SubscriptionDetail:
        request = events_pb2.GetSubscriptionRequest(name=name, limit=limit, status=status, show_secret=show_secret)
        return self._call("GetSubscription", request)

    def test_subscription(self, name: str) -> events_pb2.TestSubscriptionResponse:
        return self._call("TestSubscription", events_pb2.SubscriptionRequest(name=name))

    def redeliver(self, name: str, delivery_id: int = 0) -> events_pb2.RedeliverResponse:
        return self._call("RedeliverSubscription", events_pb2.RedeliverRequest(name=name, delivery_id=delivery_id))

    def delete_subscription(self, name: str) -> None:
        self._call("DeleteSubscription", events_pb2.SubscriptionRequest(name=name))


@contextmanager
def connect(profile: str | None = None) -> Iterator[OperatorClient]:
    client = OperatorClient.from_profile(profile)
    try:
        yield client
    finally:
        client.close()


__all__ = ["OperatorClient", "aio_channel", "channel_credentials", "connect", "FleetopsError"]
