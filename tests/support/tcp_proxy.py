"""A TCP relay whose connections a test can cut, to drop a link without stopping either end."""

from __future__ import annotations

from load_balancer import LoadBalancer


class TcpProxy(LoadBalancer):
    """Listens on 127.0.0.1:<port> and relays every connection to ``target`` (host, port).

    The one-target case of :class:`load_balancer.LoadBalancer`: :meth:`drop` resets every
    connection it carries (both ends see the link die, as when a network path fails); new
    connections are relayed as before. Runs on its own thread and loop, so synchronous tests can
    use it.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__([(target_host, target_port)], name="tcp-proxy")
