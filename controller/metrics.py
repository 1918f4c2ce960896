"""Prometheus metrics, served on their own HTTP port (``--metrics-listen``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from fleetops.controller.commands.output import OutputSpool
    from fleetops.controller.objects.health import StoreHealth


class ControllerMetrics:
    """The controller's metric families, in a registry of their own (tests start several controllers)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connected_agents = Gauge(
            "fleetops_connected_agents", "Agents with a live control stream to this replica", registry=self.registry
        )
        self.heartbeats = Counter(
            "fleetops_agent_heartbeats", "Heartbeats received from agents", registry=self.registry
        )
        self.refused_agent_messages = Counter(
            "fleetops_refused_agent_messages",
            "Agent connections or messages refused",
            ["reason"],
            registry=self.registry,
        )
        self.object_store_up = Gauge(
            "fleetops_object_store_up",
            "1 while the object store takes writes, 0 while it is degraded (output is spooled meanwhile)",
            registry=self.registry,
        )
        self.output_spool_bytes = Gauge(
            "fleetops_output_spool_bytes",
            "Bytes of command output in this replica's spool (waiting for the object store or being received)",
            registry=self.registry,
        )
        self.output_spool_pending = Gauge(
            "fleetops_output_spool_pending",
            "Finished command outputs waiting in this replica's spool for the object store",
            registry=self.registry,
        )
        self.rpcs = Counter(
            "fleetops_grpc_server_handled",
            "RPCs completed, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.rpc_latency = Histogram(
            "fleetops_grpc_server_handling_seconds",
            "RPC handling time (unary calls)",
            ["method"],
            registry=self.registry,
        )

        self.replicas_alive = Gauge(
            "fleetops_replicas_alive",
            "Controller replicas this one counts as alive (itself included), from the shared registry",
            registry=self.registry,
        )
        self.routed_hosts = Gauge(
            "fleetops_routed_hosts",
            "Hosts this replica reaches through another replica (the routing table's other rows)",
            registry=self.registry,
        )
        self.peer_calls = Counter(
            "fleetops_peer_calls",
            "Calls to other replicas over the peer service, by call and outcome",
            ["call", "outcome"],
            registry=self.registry,
        )

    def watch_replicas(self, alive: Callable[[], int], routed: Callable[[], int]) -> None:
        """Follow the replica registry: replicas alive, hosts reached through the others."""
        self.replicas_alive.set_function(alive)
        self.routed_hosts.set_function(routed)

    def watch_object_store(self, health: StoreHealth, spool: OutputSpool) -> None:
        """Follow the object store's health and the output spool's fill."""
        health.on_change(lambda status: self.object_store_up.set(1 if status.up else 0))
        self.output_spool_bytes.set_function(lambda: spool.used_bytes)
        self.output_spool_pending.set_function(lambda: spool.pending_count)

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server in a daemon thread; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every RPC and times unary ones."""

    def __init__(self, metrics: ControllerMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            if handler is not None:
                self._metrics.rpcs.labels(handler_call_details.method, "STARTED").inc()
            return handler
        method = handler_call_details.method
        inner = handler.unary_unary
        metrics = self._metrics

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)  # type: ignore[arg-type]  # grpc-stubs: handlers of sync servers only
            except BaseException:
                code = str(context.code() or grpc.StatusCode.UNKNOWN).removeprefix("StatusCode.")
                raise
            finally:
                metrics.rpc_latency.labels(method).observe(time.perf_counter() - start)
                metrics.rpcs.labels(method, code).inc()

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
