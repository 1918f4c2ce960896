"""The parts of the AWS credential chain we resolve ourselves (explicit keys, shared files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.controller.objects.aws_credentials import StaticCredentials, resolve_credentials


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_explicit_keys_win_over_everything(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtoken"}
    assert resolve_credentials("k", "s", None, env, tmp_path) == StaticCredentials("k", "s", None)
    assert resolve_credentials("k", "s", "t", env, tmp_path) == StaticCredentials("k", "s", "t")


@pytest.mark.parametrize(("key", "secret"), [("k", None), (None, "s")])
def test_half_a_key_pair_is_invalid(key: str | None, secret: str | None, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="both an access key id and a secret"):
        resolve_credentials(key, secret, None, {}, tmp_path)


def test_environment_keys_and_web_identity_are_left_to_obstore(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", "[default]\naws_access_key_id = filekey\naws_secret_access_key = x\n")
    env = {"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret"}
    assert resolve_credentials(None, None, None, env, tmp_path) is None
    env = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"}
    assert resolve_credentials(None, None, None, env, tmp_path) is None


def test_default_profile_of_the_credentials_file(tmp_path: Path) -> None:
    write(
        tmp_path / ".aws" / "credentials",
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = se%cret\naws_session_token = tok\n",
    )
    assert resolve_credentials(None, None, None, {}, tmp_path) == StaticCredentials("AKIADEFAULT", "se%cret", "tok")


def test_named_profile_and_custom_file_locations(tmp_path: Path) -> None:
    credentials = write(tmp_path / "creds", "[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
    config = write(tmp_path / "config", "[profile ops]\naws_access_key_id = OPS\naws_secret_access_key = OPSSECRET\n")
    env = {"AWS_PROFILE": "ops", "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}
    assert resolve_credentials(None, None, None, env, tmp_path) == StaticCredentials("OPS", "OPSSECRET", None)


def test_nothing_found_falls_through_to_container_and_instance_credentials(tmp_path: Path) -> None:
    assert resolve_credentials(None, None, None, {}, tmp_path) is None
    write(tmp_path / ".aws" / "config", "[profile sso]\nsso_start_url = https://example.awsapps.com/start\n")
    assert resolve_credentials(None, None, None, {"AWS_PROFILE": "sso"}, tmp_path) is None


def test_a_broken_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path / ".aws" / "credentials", "aws_access_key_id = no section header\n")
    with pytest.raises(InvalidInput, match="cannot parse the AWS credentials file"):
        resolve_credentials(None, None, None, {}, tmp_path)


def test_repr_hides_the_secret() -> None:
    assert "hunter2" not in repr(StaticCredentials("AKIA", "hunter2", "token"))
