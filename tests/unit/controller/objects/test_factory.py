"""store_from_url: which backend a configured URL names."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.objects.factory import store_from_url
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.objects.s3 import S3Store


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The S3 store reads the AWS environment and ~/.aws at construction; keep the host's out.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def s3_settings(store: object) -> tuple[dict[str, object], dict[str, object]]:
    assert isinstance(store, S3Store)
    inner = store._store
    return dict(inner.config), dict(inner.client_options or {})


@pytest.mark.parametrize("url", ["", "   "])
def test_empty_means_the_state_dir(url: str, tmp_path: Path) -> None:
    store = store_from_url(url, tmp_path)
    assert isinstance(store, LocalDirectoryStore)
    assert store.root == tmp_path / "objects"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///var/lib/fleetops/objects", "/var/lib/fleetops/objects"),
        ("file://localhost/srv/objects", "/srv/objects"),
        ("file:///srv/with%20space", "/srv/with space"),
    ],
)
def test_file_urls(url: str, path: str, tmp_path: Path) -> None:
    store = store_from_url(url, tmp_path)
    assert isinstance(store, LocalDirectoryStore)
    assert store.root == Path(path)


def test_s3_url_with_a_local_endpoint() -> None:
    store = store_from_url(
        "s3://fleetops-output/prod/eu?endpoint=http://127.0.0.1:8333&region=eu-west-1&path_style=true", Path("/")
    )
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("fleetops-output", "prod/eu")
    config, client = s3_settings(store)
    assert config["endpoint"] == "http://127.0.0.1:8333"
    assert config["region"] == "eu-west-1"
    assert config["virtual_hosted_style_request"] in (False, "false")
    assert client["allow_http"] in (True, "true")  # the endpoint is http, so http is allowed


def test_s3_url_for_aws() -> None:
    store = store_from_url("s3://fleetops-output", Path("/"))
    assert isinstance(store, S3Store)
    assert store.prefix == ""
    config, client = s3_settings(store)
    assert "endpoint" not in config
    assert config["region"] == "us-east-1"
    assert config["virtual_hosted_style_request"] in (True, "true")
    assert client["allow_http"] in (False, "false")


def test_virtual_hosted_endpoint_names_the_bucket() -> None:
    store = store_from_url("s3://logs-bucket?endpoint=https://s3.example.com:9000", Path("/"))
    config, _ = s3_settings(store)
    assert config["endpoint"] == "https://logs-bucket.s3.example.com:9000"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("gs://bucket", "scheme must be file or s3"),
        ("/var/lib/objects", "scheme must be file or s3"),
        ("file:relative/dir", "absolute path"),
        ("file://", "absolute path"),
        ("file://otherhost/srv", "remote host"),
        ("file:///srv?x=1", "no query"),
        ("s3://", "expected s3://BUCKET"),
        ("s3:///prefix", "expected s3://BUCKET"),
        ("s3://bucket:9000/x", "expected s3://BUCKET"),
        ("s3://ab", "invalid S3 bucket name"),
        ("s3://bucket?endpont=http://x", "unknown parameter(s): endpont"),
        ("s3://bucket?region=a&region=b", "exactly once"),
        ("s3://bucket?region=", "exactly once"),
        ("s3://bucket?path_style=maybe", "not true or false"),
        ("s3://bucket/a//b", "empty segment"),
        ("s3://bucket/../b", "'..' segment"),
        ("s3://bucket?endpoint=ftp://host", "invalid S3 endpoint"),
        ("s3://bucket?endpoint=http://127.0.0.1:8333", "as a subdomain"),
        ("s3://bucket?endpoint=https://host/path", "must not have a path"),
    ],
)
def test_bad_urls_are_invalid_input_with_the_format_in_the_hint(url: str, complaint: str) -> None:
    with pytest.raises(InvalidInput) as info:
        store_from_url(url, Path("/state"))
    assert complaint in info.value.message
    assert info.value.hint


def test_credentials_in_the_url_are_refused_and_not_echoed() -> None:
    with pytest.raises(InvalidInput) as info:
        store_from_url("s3://AKIAKEY:topsecret@bucket/x", Path("/"))
    assert "must not contain credentials" in info.value.message
    assert "topsecret" not in info.value.message
    assert "AWS_ACCESS_KEY_ID" in info.value.hint
