"""The enrollment port's source address, from gRPC peer strings."""

from __future__ import annotations

import pytest

from fleetops.controller.rpc.throttle import peer_address


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:54321", "127.0.0.1"),
        ("ipv6:[::1]:54321", "::1"),
        ("ipv6:[fe80::1%eth0]:443", "fe80::1"),
        ("unix:/run/fleetops.sock", "unix:/run/fleetops.sock"),
    ],
)
def test_peer_address(peer: str, address: str) -> None:
    assert peer_address(peer) == address
