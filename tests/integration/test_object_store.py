"""S3Store against a real S3 server (SeaweedFS started by tests/support/s3server.py)."""

from __future__ import annotations

import gc
import hashlib
import random
import time
from pathlib import Path

import psutil
import pytest

from fleetops.common.errors import AuthError, NotFound, Unavailable
from fleetops.controller.objects.factory import store_from_url
from fleetops.controller.objects.health import PROBE_PREFIX, check_store
from fleetops.controller.objects.interfaces import ObjectInfo, StoreProblem, StoreUnavailable
from fleetops.controller.objects.s3 import S3Store, S3Writer

from s3server import SeaweedS3

MiB = 1 << 20
MB = 1000 * 1000


def make_store(seaweed: SeaweedS3, bucket: str, **overrides: object) -> S3Store:
    settings: dict[str, object] = {
        "endpoint_url": seaweed.endpoint,
        "region": seaweed.region,
        "path_style": True,
        "allow_http": True,
        "access_key_id": seaweed.access_key,
        "secret_access_key": seaweed.secret_key,
    }
    settings.update(overrides)
    return S3Store(bucket, **settings)  # type: ignore[arg-type]


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> str:
    return seaweed.new_bucket()


@pytest.fixture
def store(seaweed: SeaweedS3, bucket: str) -> S3Store:
    return make_store(seaweed, bucket)


async def test_put_get_head_list_delete(store: S3Store) -> None:
    data = bytes(range(256)) * 100
    info = await store.put("commands/c1/host-a/stdout", data)
    assert info == ObjectInfo("commands/c1/host-a/stdout", len(data), hashlib.sha256(data).hexdigest())
    await store.put("commands/c1/host-b/stdout", b"")
    await store.put("commands/c10/host-a/stdout", b"other command")

    assert await store.get("commands/c1/host-a/stdout") == data
    assert await store.get("commands/c1/host-b/stdout") == b""
    assert await store.head("commands/c1/host-a/stdout") == ObjectInfo("commands/c1/host-a/stdout", len(data), "")
    assert await store.head("commands/c1/nobody/stdout") is None
    assert await store.list("commands/c1") == ["commands/c1/host-a/stdout", "commands/c1/host-b/stdout"]
    assert len(await store.list("")) == 3

    await store.delete("commands/c1/host-a/stdout")
    await store.delete("commands/c1/host-a/stdout")  # idempotent
    assert await store.head("commands/c1/host-a/stdout") is None
    with pytest.raises(NotFound, match="no object 'commands/c1/host-a/stdout'"):
        await store.get("commands/c1/host-a/stdout")
    with pytest.raises(NotFound):
        await anext(store.read("commands/c1/host-a/stdout"))


async def test_streaming_read(store: S3Store) -> None:
    data = random.Random(1).randbytes(3 * MiB + 777)
    await store.put("stream/me", data)
    chunks = [chunk async for chunk in store.read("stream/me", chunk_size=MiB)]
    assert b"".join(chunks) == data
    assert all(len(c) >= MiB for c in chunks[:-1])
    assert all(isinstance(c, bytes) for c in chunks)


async def test_prefix_keeps_keys_relative(seaweed: SeaweedS3, bucket: str) -> None:
    tenant = make_store(seaweed, bucket, prefix="tenant/a")
    whole = make_store(seaweed, bucket)
    await tenant.put("a b/ü/%41+x", b"odd key")
    assert await tenant.list("") == ["a b/ü/%41+x"]
    assert await whole.list("") == ["tenant/a/a b/ü/%41+x"]
    assert await whole.get("tenant/a/a b/ü/%41+x") == b"odd key"


async def test_multipart_writer_round_trips_40_mib(seaweed: SeaweedS3, bucket: str) -> None:
    store = make_store(seaweed, bucket, part_size=8 * MiB)
    rng = random.Random(40)
    expected = hashlib.sha256()
    written = bytearray()
    writer = await store.writer("big/40mib")
    assert isinstance(writer, S3Writer)
    for _ in range(40):
        chunk = rng.randbytes(MiB)
        await writer.write(chunk)
        expected.update(chunk)
        written += chunk
    info = await writer.close()

    assert writer.part_count == 5
    assert seaweed.object_etag(bucket, "big/40mib").endswith("-5")  # the server saw a 5-part upload
    assert seaweed.multipart_uploads(bucket) == []
    assert info == ObjectInfo("big/40mib", 40 * MiB, expected.hexdigest())
    assert await store.get("big/40mib") == written
    streamed = hashlib.sha256()
    async for chunk in store.read("big/40mib"):
        streamed.update(chunk)
    assert streamed.hexdigest() == info.sha256


async def test_small_writer_is_a_single_put(seaweed: SeaweedS3, store: S3Store, bucket: str) -> None:
    writer = await store.writer("small")
    await writer.write(b"hello ")
    await writer.write(b"world")
    info = await writer.close()
    assert info == ObjectInfo("small", 11, hashlib.sha256(b"hello world").hexdigest())
    assert writer.part_count == 1
    assert "-" not in seaweed.object_etag(bucket, "small")
    empty = await store.writer("empty")
    assert (await empty.close()).size == 0
    assert await store.get("empty") == b""


async def test_large_put_round_trips(store: S3Store) -> None:
    data = random.Random(2).randbytes(20 * MiB + 3)
    info = await store.put("large/put", data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert await store.get("large/put") == data


async def test_writer_abort_discards_the_multipart_upload(seaweed: SeaweedS3, store: S3Store, bucket: str) -> None:
    writer = await store.writer("aborted")
    await writer.write(b"a" * (12 * MiB))  # one part uploaded, 4 MiB still buffered
    assert seaweed.multipart_uploads(bucket) == ["aborted"]
    await writer.abort()
    await writer.abort()
    assert seaweed.multipart_uploads(bucket) == []
    assert await store.head("aborted") is None
    assert await store.list("") == []


@pytest.mark.timeout(120)
async def test_streaming_300_mib_keeps_memory_bounded(store: S3Store) -> None:
    process = psutil.Process()
    rng = random.Random(300)
    await store.put("warm-up", b"x")  # the client's first request allocates its runtime and pool
    gc.collect()
    baseline = process.memory_info().rss
    peak = baseline
    expected = hashlib.sha256()

    writer = await store.writer("big/300mib")
    for _ in range(300):
        chunk = rng.randbytes(MiB)
        expected.update(chunk)
        await writer.write(chunk)
        peak = max(peak, process.memory_info().rss)
    info = await writer.close()
    write_growth = peak - baseline

    streamed = hashlib.sha256()
    size = 0
    peak = process.memory_info().rss
    async for chunk in store.read("big/300mib"):
        streamed.update(chunk)
        size += len(chunk)
        peak = max(peak, process.memory_info().rss)
    read_growth = peak - baseline

    assert info == ObjectInfo("big/300mib", 300 * MiB, expected.hexdigest())
    assert (size, streamed.hexdigest()) == (info.size, info.sha256)
    assert write_growth < 80 * MB, f"RSS grew {write_growth / MB:.0f} MB while writing 300 MiB"
    assert read_growth < 80 * MB, f"RSS grew {read_growth / MB:.0f} MB while reading 300 MiB"
    await store.delete("big/300mib")


async def test_wrong_secret_is_a_credentials_problem_never_an_auth_error(seaweed: SeaweedS3, bucket: str) -> None:
    # The store refusing the controller must never look like the caller being refused (issue 11).
    impostor = make_store(seaweed, bucket, secret_access_key="not-the-secret")
    with pytest.raises(StoreUnavailable) as info:
        await impostor.put("k", b"x")
    assert info.value.problem is StoreProblem.CREDENTIALS
    assert not isinstance(info.value, AuthError)
    assert "rejected the controller's credentials (SignatureDoesNotMatch)" in info.value.message
    assert seaweed.endpoint in info.value.message
    assert "secret" in info.value.hint
    with pytest.raises(StoreUnavailable):
        await impostor.list("")  # obstore reports this one as a GenericError
    with pytest.raises(StoreUnavailable):
        await impostor.head("k")  # a HEAD refusal has no body to name the reason
    writer = await impostor.writer("k")
    await writer.write(b"x")
    with pytest.raises(StoreUnavailable):
        await writer.close()
    await writer.abort()

    stranger = make_store(seaweed, bucket, access_key_id="nobody")
    with pytest.raises(StoreUnavailable, match="InvalidAccessKeyId"):
        await stranger.get("k")


async def test_missing_bucket_is_named(seaweed: SeaweedS3) -> None:
    store = make_store(seaweed, "no-such-bucket-here")
    with pytest.raises(StoreUnavailable, match="bucket 'no-such-bucket-here' does not exist") as info:
        await store.get("k")
    assert info.value.problem is StoreProblem.BUCKET
    with pytest.raises(StoreUnavailable, match="listing the bucket: bucket 'no-such-bucket-here' does not exist"):
        await check_store(store)


async def test_store_check_passes_and_leaves_nothing_behind(seaweed: SeaweedS3, bucket: str) -> None:
    store = make_store(seaweed, bucket)
    await check_store(store, "replica/1")
    assert await store.list(PROBE_PREFIX) == []


async def test_url_and_environment_credentials(
    seaweed: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    from_env = store_from_url(seaweed.url(bucket, "via-url"), tmp_path)
    await from_env.put("k", b"env credentials")

    # The shared credentials file, which obstore itself does not read.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[fleetops]\naws_access_key_id = {seaweed.access_key}\naws_secret_access_key = {seaweed.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "fleetops")
    from_file = store_from_url(seaweed.url(bucket, "via-url"), tmp_path)
    assert await from_file.get("k") == b"env credentials"


@pytest.mark.timeout(120)
async def test_stopped_server_is_unavailable_within_seconds(seaweed: SeaweedS3, store: S3Store) -> None:
    await store.put("survives/restart", b"kept")
    writer = await store.writer("interrupted")
    await writer.write(b"p" * (8 * MiB))
    seaweed.stop()
    try:
        operations = {
            "put": lambda: store.put("k", b"x"),
            "get": lambda: store.get("survives/restart"),
            "head": lambda: store.head("survives/restart"),
            "list": lambda: store.list(""),
            "delete": lambda: store.delete("survives/restart"),
        }
        for name, operation in operations.items():
            started = time.monotonic()
            with pytest.raises(Unavailable) as info:
                await operation()
            elapsed = time.monotonic() - started
            assert elapsed < 10, f"{name} took {elapsed:.1f}s to give up"
            assert f"object store at {seaweed.endpoint}" in info.value.message
            assert "unreachable: connection refused" in info.value.message, info.value.message
        with pytest.raises(Unavailable):
            await writer.write(b"q" * (8 * MiB))
            await writer.close()
        await writer.abort()  # best effort while the store is down: logs, does not raise
    finally:
        seaweed.start()
    assert await store.get("survives/restart") == b"kept"
    assert await store.list("survives") == ["survives/restart"]
