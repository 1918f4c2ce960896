"""The object store's health: the start-up check, the verdict, and who feeds it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fleetops.common.errors import Unavailable
from fleetops.controller.objects.health import PROBE_PREFIX, MonitoredStore, StoreHealth, StoreStatus, check_store
from fleetops.controller.objects.interfaces import ObjectInfo, StoreProblem, StoreUnavailable
from fleetops.controller.objects.local import LocalDirectoryStore


class RefusingDeletes(LocalDirectoryStore):
    async def delete(self, key: str) -> None:
        raise StoreUnavailable("AccessDenied on delete", "grant delete", problem=StoreProblem.ACCESS)


class Lying(LocalDirectoryStore):
    async def get(self, key: str) -> bytes:
        return b"something else"


async def test_check_passes_on_a_working_store_and_leaves_nothing(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    await check_store(store, "replica one/1")
    assert await store.list(PROBE_PREFIX) == []


async def test_check_names_the_step_that_failed(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="failed deleting the probe object") as info:
        await check_store(RefusingDeletes(tmp_path))
    assert info.value.problem is StoreProblem.ACCESS and info.value.hint == "grant delete"
    assert info.value.exit_code == 78
    with pytest.raises(StoreUnavailable, match="returned other bytes"):
        await check_store(Lying(tmp_path / "lying"))


def test_health_logs_each_problem_once_and_tells_listeners(caplog: pytest.LogCaptureFixture) -> None:
    health = StoreHealth("S3Store(bucket='b')", "output waits in /spool")
    seen: list[StoreStatus] = []
    health.on_change(seen.append)
    problem = StoreUnavailable(
        "rejected the controller's credentials", "check the secret", problem=StoreProblem.CREDENTIALS
    )
    with caplog.at_level(logging.INFO, logger="fleetops.controller.objects.health"):
        for _ in range(50):
            health.failed(problem)
        health.succeeded()
        health.succeeded()
    degraded = [r for r in caplog.records if "DEGRADED" in r.getMessage()]
    assert len(degraded) == 1
    assert "(credentials)" in degraded[0].getMessage() and "to fix: check the secret" in degraded[0].getMessage()
    assert "/spool" in degraded[0].getMessage()
    assert [s.up for s in seen] == [True, False, True]
    assert seen[1].problem is StoreProblem.CREDENTIALS


async def test_monitored_store_follows_failures_and_writes(tmp_path: Path) -> None:
    class Switch(LocalDirectoryStore):
        down = False

        async def put(self, key: str, data: bytes) -> ObjectInfo:
            if self.down:
                raise Unavailable("connection refused")
            return await super().put(key, data)

    inner = Switch(tmp_path)
    health = StoreHealth("switch")
    store = MonitoredStore(inner, health)
    await store.put("k", b"x")
    inner.down = True
    with pytest.raises(Unavailable):
        await store.put("k", b"y")
    assert not health.up and health.status.problem is StoreProblem.UNREACHABLE
    assert await store.get("k") == b"x"
    assert not health.up  # a read proves nothing about writes
    inner.down = False
    await store.put("k", b"y")
    assert health.up
