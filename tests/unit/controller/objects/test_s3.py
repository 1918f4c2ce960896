"""S3Store configuration checks that need no server (the integration tests use a real one)."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.objects.s3 import MIN_PART_SIZE, S3Store


def local_store(**overrides: object) -> S3Store:
    settings: dict[str, object] = {
        "endpoint_url": "http://127.0.0.1:9",
        "path_style": True,
        "allow_http": True,
        "access_key_id": "k",
        "secret_access_key": "s",
    }
    settings.update(overrides)
    return S3Store("fleetops-output", **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE - 1, 0, 6 << 30])
def test_part_size_must_fit_s3_limits(part_size: int) -> None:
    with pytest.raises(InvalidInput, match="part size"):
        local_store(part_size=part_size)


def test_plain_http_needs_to_be_allowed() -> None:
    with pytest.raises(InvalidInput, match="plain http") as info:
        local_store(allow_http=False)
    assert "allow_http" in info.value.hint


def test_explicit_keys_ignore_an_ambient_session_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # obstore would sign explicit keys with AWS_SESSION_TOKEN from the environment; S3 then
    # refuses every request. A credential provider keeps the explicit triple together.
    monkeypatch.setenv("AWS_SESSION_TOKEN", "belongs-to-someone-else")
    store = local_store()
    provider = store._store.credential_provider
    assert provider is not None
    assert provider() == {"access_key_id": "k", "secret_access_key": "s", "token": None, "expires_at": None}


@pytest.mark.parametrize("bucket", ["ab", "has space", "x" * 64, "ünïcode"])
def test_bad_bucket_names(bucket: str) -> None:
    with pytest.raises(InvalidInput, match="bucket name"):
        S3Store(bucket)


async def test_keys_are_checked_before_any_request() -> None:
    store = local_store()  # nothing listens on port 9: a request would fail with Unavailable
    with pytest.raises(InvalidInput):
        await store.put("../x", b"")
    with pytest.raises(InvalidInput):
        store.read("/abs")
    with pytest.raises(InvalidInput):
        await store.writer("a//b")
    with pytest.raises(InvalidInput):
        await store.list("/")
