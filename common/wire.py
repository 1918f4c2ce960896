"""Conversion of the shared wire messages (proto/fleetops/v1/common.proto) to plain Python."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fleetops.v1 import common_pb2


def inventory_to_proto(inv: dict[str, Any]) -> common_pb2.Inventory:
    msg = common_pb2.Inventory(
        hostname=str(inv.get("hostname", "")),
        os_family=str(inv.get("os_family", "")),
        os_name=str(inv.get("os_name", "")),
        os_version=str(inv.get("os_version", "")),
        kernel=str(inv.get("kernel", "")),
        arch=str(inv.get("arch", "")),
        cpu_count=int(inv.get("cpu_count", 0) or 0),
        memory_bytes=int(inv.get("memory_bytes", 0) or 0),
        ip_addresses=[str(a) for a in inv.get("ip_addresses", [])],
        agent_version=str(inv.get("agent_version", "")),
    )
    for d in inv.get("disks", []):
        msg.disks.add(
            mountpoint=str(d.get("mountpoint", "")),
            device=str(d.get("device", "")),
            fstype=str(d.get("fstype", "")),
            total_bytes=int(d.get("total_bytes", 0) or 0),
        )
    boot = inv.get("boot_time")
    if boot:
        msg.boot_time.FromDatetime(datetime.fromtimestamp(float(boot), UTC))
    return msg


def inventory_from_proto(msg: common_pb2.Inventory) -> dict[str, Any]:
    return {
        "hostname": msg.hostname,
        "os_family": msg.os_family,
        "os_name": msg.os_name,
        "os_version": msg.os_version,
        "kernel": msg.kernel,
        "arch": msg.arch,
        "cpu_count": msg.cpu_count,
        "memory_bytes": msg.memory_bytes,
        "disks": [
            {"mountpoint": d.mountpoint, "device": d.device, "fstype": d.fstype, "total_bytes": d.total_bytes}
            for d in msg.disks
        ],
        "ip_addresses": list(msg.ip_addresses),
        "boot_time": msg.boot_time.ToDatetime(tzinfo=UTC).timestamp() if msg.HasField("boot_time") else 0.0,
        "agent_version": msg.agent_version,
    }
